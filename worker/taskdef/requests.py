"""A job to enqueue, as data: what a producer, a task (``ctx.enqueue_many``) and the HTTP API hand over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from worker.taskdef.registry import TaskDef

#: How long before a job may run: seconds, or a :class:`~datetime.timedelta`.
Delay = float | int | timedelta


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job of a batch for :meth:`Client.enqueue_many`; fields mean what they mean in ``enqueue``."""

    task: TaskDef[Any, Any] | str
    payload: Any
    job_id: str | None = None
    defer_by: Delay | None = None
    defer_until: datetime | None = None
    timeout: float | None = None
    queue: str | None = None
