"""What a producer reads about a job: :class:`JobResult` for a finished one, :class:`JobInfo` at any time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from worker.client.dead_letters import DeadLetter
from worker.errors import JobFailed
from worker.states import STATUS_OF_OUTCOME, TERMINAL_STATUSES, JobStatus, Outcome

if TYPE_CHECKING:
    from worker.taskdef.registry import TaskDef

R = TypeVar("R")


def at(ms: int | float | None) -> datetime | None:
    """Milliseconds since the epoch as an aware datetime (None stays None)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _error(raw: Any) -> JobFailed:
    return raw if isinstance(raw, JobFailed) else JobFailed("UnknownError", str(raw))


@dataclass(frozen=True, slots=True)
class JobResult(Generic[R]):
    """A finished job: its value or its error, how it ended, and when it ran.

    ``value`` is what the task returned, rebuilt as its return model when that is a pydantic model
    and the task is known; otherwise the stored JSON value. It is ``None`` when the job failed.
    """

    job_id: str
    task: str
    success: bool
    value: R | None
    error: JobFailed | None
    outcome: Outcome | None  #: SUCCEEDED, DEAD_LETTERED or ABORTED (None: written by stock arq)
    tries: int
    interruptions: int
    enqueued_at: datetime
    started_at: datetime
    finished_at: datetime
    queue_name: str

    @property
    def status(self) -> JobStatus:
        """The final status this result stands for."""
        if self.outcome in STATUS_OF_OUTCOME:
            return STATUS_OF_OUTCOME[self.outcome]
        return JobStatus.SUCCEEDED if self.success else JobStatus.FAILED

    @property
    def duration_s(self) -> float:
        """Seconds the last try ran."""
        return (self.finished_at - self.started_at).total_seconds()

    def unwrap(self) -> R:
        """The value, or raise the stored :class:`JobFailed`."""
        if self.error is not None:
            raise self.error
        return cast(R, self.value)

    @classmethod
    def from_arq(cls, job_id: str, d: dict[str, Any], task_def: TaskDef[Any, R] | None) -> JobResult[R]:
        """Build from a decoded result dict (arq's layout plus jobq's ``o`` and ``n``)."""
        success = bool(d.get("s"))
        raw = d.get("r")
        value = (task_def.load_result(raw) if task_def is not None else raw) if success else None
        outcome = d.get("o")
        known = {o.value for o in Outcome}
        return cls(
            job_id=job_id,
            task=str(d.get("f", "")),
            success=success,
            value=value,
            error=None if success else _error(raw),
            outcome=Outcome(outcome) if isinstance(outcome, str) and outcome in known else None,
            tries=int(d.get("t") or 1),
            interruptions=int(d.get("n") or 0),
            enqueued_at=cast(datetime, at(d.get("et", 0))),
            started_at=cast(datetime, at(d.get("st", 0))),
            finished_at=cast(datetime, at(d.get("ft", 0))),
            queue_name=str(d.get("q", "")),
        )

    @classmethod
    def from_dead_letter(cls, entry: DeadLetter) -> JobResult[Any]:
        """The result of a dead-lettered job whose stored result has expired."""
        return cls(
            job_id=entry.job_id,
            task=entry.task,
            success=False,
            value=None,
            error=JobFailed(entry.error_type, entry.message, entry.traceback),
            outcome=Outcome.DEAD_LETTERED,
            tries=entry.tries,
            interruptions=entry.interruptions,
            enqueued_at=entry.enqueued_at,
            started_at=entry.failed_at,
            finished_at=entry.failed_at,
            queue_name=entry.queue,
        )


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job's status with its tries, timestamps, last error and progress (see :meth:`JobHandle.status`)."""

    job_id: str
    status: JobStatus
    task: str | None = None
    tries: int = 0  #: charged tries so far (the running one included), or the final count
    interruptions: int = 0  #: tries cut short by crashes or shutdowns (not charged)
    enqueued_at: datetime | None = None
    scheduled_at: datetime | None = None  #: when the job, or its next try, may start (while queued)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: JobFailed | None = None
    progress: float | None = None
    progress_message: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended for good."""
        return self.status in TERMINAL_STATUSES
