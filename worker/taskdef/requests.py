"""A job to enqueue, as data: what a producer, a task (``ctx.enqueue_many``) and the HTTP API hand over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from worker.deprecations import renamed_argument
from worker.taskdef.registry import TaskDef

#: How long before a job may run: seconds, or a :class:`~datetime.timedelta`.
Delay = float | int | timedelta


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job of a batch for :meth:`Client.enqueue_many`; fields mean what they mean in ``enqueue``.

    ``timeout`` is the deprecated spelling of ``timeout_s`` (it warns; gone in jobq 0.3).
    """

    task: TaskDef[Any, Any] | str
    payload: Any
    job_id: str | None = None
    defer_by: Delay | None = None
    defer_until: datetime | None = None
    timeout_s: float | None = None
    queue: str | None = None
    timeout: float | None = field(default=None, repr=False, compare=False)
    priority: int | None = None
    dedup_key: str | None = None  #: the dedup key of the job, instead of the one its task's mode computes

    def __post_init__(self) -> None:
        if self.timeout is not None:  # blame the line that built the request (past __init__ and this method)
            given = renamed_argument("JobRequest", "timeout", self.timeout, "timeout_s", self.timeout_s, stacklevel=5)
            object.__setattr__(self, "timeout_s", given)


def job_requests(task: TaskDef[Any, Any] | str, payloads: Sequence[Any], **options: Any) -> list[JobRequest]:
    """One :class:`JobRequest` per payload, all with the same task and options."""
    return [JobRequest(task, payload, **options) for payload in payloads]
