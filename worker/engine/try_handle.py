"""The owner of one try, from its claim to its recorded end (SAQ's per-job task context is the model).

The engine makes a :class:`TryHandle` for each job it claims and cancels the try only through it,
with a :class:`CancelReason`; the executor reads that reason at the one point where a cancelled try
is decided (:func:`cancelled_outcome`). Nothing else records why a try was stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum

from worker.engine.finish import StartedTry
from worker.engine.leases import Claim
from worker.states import Outcome


class CancelReason(StrEnum):
    """Why the engine cancelled a try."""

    ABORT = "abort"  #: the job's abort was requested: recorded as aborted, never retried
    LEASE_LOST = "lease_lost"  #: another worker holds the lease now: nothing is recorded
    SHUTDOWN = "shutdown"  #: the worker is stopping: the job goes back to the queue, uncharged


def cancelled_outcome(reason: CancelReason | None) -> Outcome:
    """How a try cancelled for ``reason`` ends (a cancellation without a reason is a shutdown's)."""
    if reason is CancelReason.ABORT:
        return Outcome.ABORTED
    if reason is CancelReason.LEASE_LOST:
        return Outcome.LEASE_LOST
    return Outcome.INTERRUPTED


def _nothing(_: TryHandle) -> None:
    return None


class TryHandle:
    """One claimed try: its job id, lease token and start, whether it has begun or is ending, and why it
    was cancelled, if it was."""

    __slots__ = ("_on_ending", "begun", "cancel_reason", "claim", "ending", "task")

    def __init__(self, claim: Claim, *, on_ending: Callable[[TryHandle], None] = _nothing) -> None:
        self.claim = claim
        self.task: asyncio.Task[None] | None = None  #: the engine's task running the try, once there is one
        self.begun = False  #: its task has begun (a task cancelled before its first step skips its clean-up)
        self.ending = False  #: its outcome is decided and being written: too late to cancel for the job's sake
        self.cancel_reason: CancelReason | None = None  #: the first reason it was cancelled for
        self._on_ending = on_ending

    @property
    def job_id(self) -> str:
        """The id of the job this try runs."""
        return self.claim.job_id

    @property
    def token(self) -> str:
        """The fencing token of this worker's lease on the job."""
        return self.claim.token

    @property
    def started(self) -> StartedTry:
        """What the claim found when it counted the start of this try."""
        return self.claim.started

    def begin(self) -> None:
        """The try's task runs: from now on an abort cancels it (before, the start sees the marker)."""
        self.begun = True

    def end(self) -> None:
        """The try's own work is over and only the writing of its end remains (called once per try)."""
        if not self.ending:
            self.ending = True
            self._on_ending(self)

    def cancel(self, reason: CancelReason) -> bool:
        """Cancel the try for ``reason``; return whether its task was cancelled.

        An abort or a lost lease comes too late once the try is ending (its end is being written, and
        the lease is no longer renewed); a shutdown stops even that. The first reason is the one kept.
        """
        if self.task is None or self.task.done() or (self.ending and reason is not CancelReason.SHUTDOWN):
            return False
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.task.cancel()
        return True
