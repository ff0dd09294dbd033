"""The job middleware seam: hooks a worker calls around every try (Dramatiq-style).

A middleware subclasses :class:`Middleware` and overrides the hooks it needs; the others stay no-ops
and cost nothing (the worker calls only overridden hooks). ``before_try`` hooks run in the order the
middlewares were given, ``after_try`` hooks in the reverse order, so the first middleware wraps all the
others. A hook that raises is logged with the middleware's name and skipped: it never fails the job,
and the other hooks still run.

Hooks are plain functions, called on the worker's event loop between the steps of a try: keep them
quick (a worker may run thousands of tries a second) and start a task of your own for any I/O.
This module imports nothing of the engine, so a task module can define its middleware next to its tasks.
"""

from __future__ import annotations

from typing import Any, Protocol

from worker.states import Outcome

__all__ = ["Middleware", "TryInfo"]


class TryInfo(Protocol):
    """What a middleware may read about a try (read-only; one object per try, valid during its hooks)."""

    @property
    def job_id(self) -> str:
        """The job's id."""

    @property
    def queue(self) -> str:
        """The queue the job came from."""

    @property
    def task(self) -> str:
        """The task's name; ``"?"`` when the job could not even be decoded."""

    @property
    def try_number(self) -> int:
        """Which try this is, from 1."""

    @property
    def max_tries(self) -> int:
        """Tries the job may take in all."""

    @property
    def interruptions(self) -> int:
        """Tries of the job cut short so far by crashed or stopping workers (not charged)."""

    @property
    def enqueued_ms(self) -> int:
        """When the job was enqueued (Unix time, ms)."""

    @property
    def started_ms(self) -> int:
        """When this try started (Unix time, ms)."""

    @property
    def workflow_event(self) -> str | None:
        """Set at a workflow step's end: ``"completed"`` when it completed its workflow, ``"failed"`` when it was the
        first to fail it for good; else ``None``."""

    @property
    def due_ms(self) -> int | None:
        """When the job became due (Unix time, ms), when the worker knows it: ``started_ms - due_ms`` is its wait."""

    @property
    def priority(self) -> int:
        """The job's priority within its queue (0, the default, to 255; higher runs first)."""

    @property
    def args(self) -> tuple[Any, ...]:
        """The job's positional arguments as stored (they hold the payload: keep them out of logs)."""

    @property
    def kwargs(self) -> dict[str, Any]:
        """The job's keyword arguments as stored, jobq's own options included (do not change them)."""

    @property
    def failure(self) -> Outcome | None:
        """In ``after_try``: ``FAILED`` or ``TIMED_OUT`` when the try failed, else None."""

    @property
    def detail(self) -> str:
        """In ``after_try``: what the try's log line says about its end (``""`` when it succeeded)."""


class Middleware:
    """Base class of job middlewares: every hook is a no-op until overridden.

    ``after_try`` is called once for every try the worker ends, with its :class:`~worker.states.Outcome`,
    the exception that ended it (None when it succeeded or was interrupted) and its duration in seconds.
    ``before_try`` is called when the task is about to run; a try that ends before that (a corrupt or
    undecodable job, an unknown task, an abort or a quarantine found at the start) gets ``after_try``
    only. A try whose lease was lost, or whose end could not be written because Redis went away, ends
    with ``Outcome.LEASE_LOST``.
    """

    @property
    def name(self) -> str:
        """The name failures of this middleware's hooks are logged with (its class name)."""
        return type(self).__name__

    def before_try(self, info: TryInfo) -> None:
        """Called in order of the middlewares, just before the task runs."""

    def after_try(self, info: TryInfo, outcome: Outcome, error: BaseException | None, duration_s: float) -> None:
        """Called in reverse order of the middlewares, once the try's end is recorded."""
