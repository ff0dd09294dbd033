"""What a running task sees: :class:`JobContext`, a typed view of arq's ``ctx`` dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from arq.connections import ArqRedis


@dataclass(frozen=True, slots=True)
class JobContext:
    """The job being run, passed to every task as its first argument.

    ``job_id`` is stable across tries: use it as the idempotency key of side effects, since a job
    may run more than once (at-least-once delivery).
    """

    job_id: str
    task: str
    try_number: int
    max_tries: int
    enqueued_at: datetime
    timeout_s: float
    queue_name: str
    redis: ArqRedis = field(repr=False)

    @property
    def is_last_try(self) -> bool:
        """Whether a failure of this try ends the job for good."""
        return self.try_number >= self.max_tries
