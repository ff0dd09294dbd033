"""The tries a worker runs now, each owned by its :class:`~worker.engine.try_handle.TryHandle`.

A claimed job gets a handle and a task in a free slot; a slot is free again as soon as its try is
ending (its end is being written with the other ends of the loop iteration). Aborts, lost leases and
shutdowns cancel tries only through their handles, so each try carries the reason it was stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from arq.connections import ArqRedis

from worker.engine.leases import Claim, Leases
from worker.engine.try_handle import CancelReason, TryHandle
from worker.protocol.keys import JobKeys


class RunningTries:
    """The running tries of one worker, by job id; mirrored into arq's ``Worker.tasks``."""

    def __init__(
        self, tasks: dict[str, asyncio.Task[Any]], leases: Leases, *, wake: Callable[[], None], abort_check_s: float
    ) -> None:
        self._tasks = tasks  # arq's own dict: its views of the running jobs stay true
        self._handles: dict[str, TryHandle] = {}
        self._leases = leases
        self._wake = wake
        self._abort_check_s = abort_check_s
        self._last_abort_check = 0.0
        self._ending = 0  # handles whose try is ending: their slots take the next jobs

    def __len__(self) -> int:
        return len(self._handles)

    def get(self, job_id: str) -> TryHandle | None:
        """The handle of the running try of ``job_id``, if any."""
        return self._handles.get(job_id)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks of the tries still running."""
        return [h.task for h in self._handles.values() if h.task is not None and not h.task.done()]

    def free_slots(self, max_jobs: int) -> int:
        """How many jobs may be claimed now: slots not taken, or taken by a try that is ending."""
        return max_jobs - len(self._handles) + self._ending

    def start(self, claim: Claim, run: Callable[[TryHandle], Coroutine[Any, Any, None]]) -> TryHandle:
        """Make the handle of a claimed try and start ``run(handle)`` in a task of its own."""
        handle = TryHandle(claim, on_ending=self._try_ending)
        task = asyncio.create_task(run(handle), name=claim.job_id)
        task.add_done_callback(self._task_done)
        handle.task = task
        self._handles[claim.job_id] = handle
        self._tasks[claim.job_id] = task
        return handle

    def _try_ending(self, handle: TryHandle) -> None:
        # The lease is let go before the end is sent: a renewal that runs after the end removed the lease
        # must not take the job for lost. The slot is free while the end is written: claiming the next
        # jobs overlaps that round trip instead of waiting for it.
        self._leases.release(handle.job_id)
        if self._handles.get(handle.job_id) is handle:
            self._ending += 1
            self._wake()

    def _task_done(self, _task: asyncio.Task[None]) -> None:
        # A free slot, and perhaps a retry scheduled soon: look at the queue again.
        self._wake()

    def reap(self) -> list[tuple[str, BaseException]]:
        """Forget the tries whose task is done; return the unexpected errors they ended with."""
        errors = []
        for job_id, handle in list(self._handles.items()):
            task = handle.task
            if task is None or not task.done():
                continue
            del self._handles[job_id]
            self._tasks.pop(job_id, None)
            self._ending -= handle.ending
            if not task.cancelled() and (error := task.exception()) is not None:
                errors.append((job_id, error))
        return errors

    def cancel(self, job_id: str, reason: CancelReason) -> bool:
        """Cancel the running try of ``job_id`` for ``reason`` (see :meth:`TryHandle.cancel`)."""
        handle = self._handles.get(job_id)
        return handle is not None and handle.cancel(reason)

    def cancel_all(self, reason: CancelReason) -> int:
        """Cancel every running try for ``reason``; return how many were cancelled."""
        return sum(handle.cancel(reason) for handle in list(self._handles.values()))

    def abort_check_in_s(self, now: float) -> float | None:
        """Seconds until the next abort check is due (``None`` while no try has begun: nothing to check)."""
        if not any(handle.begun for handle in self._handles.values()):
            return None
        return self._last_abort_check + self._abort_check_s - now

    async def check_aborts_if_due(self, redis: ArqRedis, queue: str) -> None:
        """Check for aborts once every ``JOBQ_ABORT_CHECK_S``."""
        now = time.monotonic()
        if now - self._last_abort_check >= self._abort_check_s:
            self._last_abort_check = now
            await self.check_aborts(redis, queue)

    async def check_aborts(self, redis: ArqRedis, queue: str) -> list[str]:
        """Cancel the running tries whose abort was requested; return their job ids.

        Tries whose task has not begun yet are left alone (the start of the try sees the marker), and so
        are tries that are ending: their outcome is decided and being written.
        """
        running = [h for h in self._handles.values() if h.begun and not h.ending and h.cancel_reason is None]
        if not running:
            return []
        flags = await redis.mget([JobKeys(handle.job_id, queue).abort for handle in running])
        return [h.job_id for h, flag in zip(running, flags, strict=True) if flag and h.cancel(CancelReason.ABORT)]
