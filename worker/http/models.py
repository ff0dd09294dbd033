"""The HTTP API's request and response bodies (pydantic models, so they also make the OpenAPI schemas)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, ValidationInfo, field_validator, model_validator

from worker.client.dead_letters import DeadLetter
from worker.client.results import JobInfo, JobResult
from worker.client.stats import GateWait, QueueStats, RunningJob
from worker.errors import JobFailed
from worker.states import JobStatus


class EnqueueBody(BaseModel):
    """A job to enqueue. The ``Idempotency-Key`` header, when given, is the job id."""

    task: str = Field(min_length=1, description="Registered task name (see GET /v1/tasks).")
    payload: dict[str, Any] = Field(default_factory=dict, description="Validated against the task's model.")
    job_id: str | None = Field(None, description="Idempotency key: a second enqueue with it creates nothing.")
    defer_by: float | None = Field(None, ge=0, description="Seconds to wait before the job may run.")
    defer_until: AwareDatetime | None = Field(None, description="When the job may run (ISO 8601 with offset).")
    timeout_s: float | None = Field(None, gt=0, description="Time limit of each try, in seconds.")
    queue: str | None = Field(None, description="Queue (default: the API's JOBQ_QUEUE_NAME).")
    priority: int | None = Field(
        None, ge=0, le=255, description="Priority within the queue, 0-255 (higher first; default: the task's, 0)."
    )
    dedup_key: str | None = Field(
        None, description="For a task with a dedup mode: the key to deduplicate by, instead of the computed one."
    )
    timeout: float | None = Field(
        None,
        gt=0,
        description="Deprecated spelling of `timeout_s`, accepted until jobq 0.3; giving both is refused.",
        json_schema_extra={"deprecated": True},
    )

    @field_validator("timeout")
    @classmethod
    def _not_both_timeouts(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("timeout_s") is not None:
            raise ValueError("is the deprecated spelling of timeout_s; give timeout_s only")
        return value

    @model_validator(mode="after")
    def _timeout_s_from_timeout(self) -> EnqueueBody:
        if self.timeout is not None:
            self.timeout_s = self.timeout
        return self


class EnqueuedOut(BaseModel):
    """Where the job is; ``created`` is false when the idempotency key found it already there."""

    job_id: str
    queue: str
    created: bool


class ErrorOut(BaseModel):
    """What went wrong, and with which field when a body was invalid."""

    error: str
    fields: list[dict[str, str]] = Field(default_factory=list)


class FailureOut(BaseModel):
    """A stored error."""

    type: str
    message: str
    traceback: str | None = None

    @classmethod
    def of(cls, error: JobFailed | None) -> FailureOut | None:
        return None if error is None else cls(type=error.error_type, message=error.message, traceback=error.traceback)


#: The status of a job whose stored result is not a jobq envelope (``decode_error`` says why).
UNDECODABLE = "undecodable"


class JobOut(BaseModel):
    """A job's status, tries, timestamps, last error and progress."""

    job_id: str
    status: str = Field(description=f"One of {', '.join(s.value for s in JobStatus)}, or {UNDECODABLE}.")
    task: str | None = None
    tries: int = 0
    interruptions: int = 0
    enqueued_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: FailureOut | None = None
    progress: float | None = None
    progress_message: str | None = None
    decode_error: str | None = Field(
        None,
        description="Set when the stored result could not be decoded (e.g. a stock arq worker pickled it); "
        "the status is then `undecodable` and only the job id is known.",
    )

    @classmethod
    def undecodable(cls, job_id: str, reason: str) -> JobOut:
        """A job whose stored result is not a jobq envelope: what is known, and why no more is."""
        return cls(job_id=job_id, status=UNDECODABLE, decode_error=f"the stored result could not be decoded: {reason}")

    @classmethod
    def of(cls, info: JobInfo) -> JobOut:
        return cls(
            job_id=info.job_id,
            status=info.status.value,
            task=info.task,
            tries=info.tries,
            interruptions=info.interruptions,
            enqueued_at=info.enqueued_at,
            scheduled_at=info.scheduled_at,
            started_at=info.started_at,
            finished_at=info.finished_at,
            last_error=FailureOut.of(info.last_error),
            progress=info.progress,
            progress_message=info.progress_message,
        )


class ResultOut(BaseModel):
    """A finished job: its value, or its error."""

    job_id: str
    status: str = Field(description=f"succeeded, dead_lettered, aborted, failed, or {UNDECODABLE}.")
    success: bool | None = Field(description="Null when the stored result could not be decoded.")
    value: Any = None
    error: FailureOut | None = None
    tries: int
    decode_error: str | None = Field(
        None, description="Set when the stored result could not be decoded (e.g. a stock arq worker pickled it)."
    )

    @classmethod
    def undecodable(cls, job_id: str, reason: str) -> ResultOut:
        """A finished job whose stored result is not a jobq envelope."""
        message = f"the stored result could not be decoded: {reason}"
        return cls(job_id=job_id, status=UNDECODABLE, success=None, tries=0, decode_error=message)

    @classmethod
    def of(cls, result: JobResult[Any]) -> ResultOut:
        return cls(
            job_id=result.job_id,
            status=result.status.value,
            success=result.success,
            value=result.value,
            error=FailureOut.of(result.error),
            tries=result.tries,
        )


class AbortOut(BaseModel):
    """The job's status after the abort request."""

    job_id: str
    status: str


class GateWaitOut(BaseModel):
    """A limit jobs of the queue wait on."""

    gate: str = Field(description="`task:<task>` (a task's concurrency), `limit:<name>:<key>`, `rate:<name>:<key>`.")
    waiting: int = Field(description="Jobs parked on it.")
    recheck_at: float = Field(description="Its next re-check, if no freed slot comes first (seconds since the epoch).")


class StatsOut(BaseModel):
    """A queue right now."""

    queue: str
    at: float
    queued: int
    ready: int
    deferred: int
    running: int
    oldest_ready_age_s: float
    dead_letters: int
    workers: int
    processed: int
    waiting: int = Field(description="Due jobs parked until a slot of their concurrency limit frees.")
    oldest_waiting_age_s: float = Field(description="How long the oldest parked job has been due (0 when none).")
    paused: bool = Field(description="No worker claims from the queue until it is resumed.")
    waiting_on: list[GateWaitOut] = Field(
        default_factory=list, description="The limits jobs wait on, the most waited on first."
    )

    @classmethod
    def of(cls, stats: QueueStats, waits: Sequence[GateWait] = ()) -> StatsOut:
        gates = [GateWaitOut(gate=w.gate, waiting=w.waiting, recheck_at=w.recheck_at) for w in waits]
        return cls.model_validate({**stats.to_dict(), "waiting_on": gates})


#: The longest ``by`` a pause records (what :func:`worker.client.pause.pause_queue` keeps at most).
MAX_PAUSE_BY_LEN = 200


class PauseBody(BaseModel):
    """Who pauses a queue, recorded with the pause (optional: the body may be left out)."""

    by: str | None = Field(
        None, max_length=MAX_PAUSE_BY_LEN, description="Who or what pauses the queue (default: `api`)."
    )


class PauseOut(BaseModel):
    """A queue's pause state after a pause or resume; ``changed`` is false when it already was so."""

    queue: str
    paused: bool
    changed: bool


class RunningOut(BaseModel):
    """A job running now, and on which worker."""

    job_id: str
    task: str
    worker: str
    due_at: float

    @classmethod
    def of(cls, job: RunningJob) -> RunningOut:
        return cls(job_id=job.job_id, task=job.task, worker=job.worker, due_at=job.due_at)


class DeadLetterOut(BaseModel):
    """One dead letter (the envelope is left out of lists; GET one to see it).

    ``corrupt`` says what is wrong with an entry jobq did not write (its other fields are placeholders;
    ``raw_size`` is the stored size): it cannot be replayed, purge it.
    """

    job_id: str
    queue: str
    task: str
    error_type: str
    message: str
    traceback: str | None
    tries: int
    interruptions: int
    enqueued_at: datetime
    failed_at: datetime
    envelope: str | None = None
    corrupt: str | None = None
    raw_size: int = 0

    @classmethod
    def of(cls, entry: DeadLetter, *, with_envelope: bool = False) -> DeadLetterOut:
        return cls(
            job_id=entry.job_id,
            queue=entry.queue,
            task=entry.task,
            error_type=entry.error_type,
            message=entry.message,
            traceback=entry.traceback,
            tries=entry.tries,
            interruptions=entry.interruptions,
            enqueued_at=entry.enqueued_at,
            failed_at=entry.failed_at,
            envelope=entry.envelope if with_envelope else None,
            corrupt=entry.corrupt,
            raw_size=entry.raw_size,
        )


class DeadLetterSelection(BaseModel):
    """Which dead letters a batch replay or purge applies to; ``all`` must be set when no filter is."""

    task: str | None = None
    error_type: str | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    all: bool = False
    confirm: bool = Field(False, description="Required for purge: dead letters are deleted for good.")


class CountOut(BaseModel):
    """How many dead letters an operation touched."""

    count: int


class TaskOut(BaseModel):
    """A registered task, with the JSON schema of its payload."""

    name: str
    timeout_s: float | None
    max_tries: int | None
    payload_schema: dict[str, Any]
