"""What the executor knows of one try: its settings, the job decoded from the claim, and the records
the try's end writes (the result body, the dead letter)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from worker.client.dead_letters import DeadLetter
from worker.engine.finish import StartedTry
from worker.errors import CorruptJobRecord, EnvelopeTooLarge, JobExpired, SerializationError
from worker.policy import RetryPolicy
from worker.protocol.keys import JobKeys
from worker.protocol.options import StepInputs
from worker.protocol.records import result_record
from worker.states import Outcome

#: Enqueue times (ms) a job may carry: what a datetime can hold (years 1 to 9999).
ENQUEUED_MS_RANGE = (-62_135_596_800_000, 253_402_300_799_999)


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """The settings one executor needs (see :class:`~worker.settings.JobqSettings` for each)."""

    queue_name: str
    job_timeout_s: float
    retry: RetryPolicy
    result_ttl_s: float
    job_expires_s: float
    max_interruptions: int
    slot_retry_s: float
    worker_id: str = ""
    max_envelope_bytes: int = 8 * 1024 * 1024


@dataclass(slots=True)  # not frozen: one is built per try, and a frozen __init__ sets each field the slow way
class TryJob:
    """A decoded job and the try that is about to run it."""

    keys: JobKeys
    token: str  #: the fencing token of this worker's lease on the job
    envelope: bytes | None
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    enqueued_ms: int
    started_ms: int
    try_number: int
    max_tries: int
    interruptions: int
    due_ms: int | None = None  #: when the job became due (its score when claimed), if known
    priority: int = 0  #: the job's priority (from its envelope's options)
    keep_result_ms: int = 0  #: a workflow step's: its result is kept at least this long (the next steps read it)
    workflow: StepInputs | None = None  #: a workflow step's place in its workflow (from its options)
    workflow_event: str | None = None  #: set at the try's end: "completed" or "failed" when it ended its workflow
    failure: Outcome | None = None  #: set at the try's end: FAILED or TIMED_OUT when it failed
    detail: str = ""  #: set at the try's end: what its log line says about it

    # With the fields above, a TryJob is the worker.TryInfo that middlewares see (no copy per try).
    @property
    def job_id(self) -> str:
        """The job's id."""
        return self.keys.job_id

    @property
    def queue(self) -> str:
        """The queue the job came from."""
        return self.keys.queue


def result_body(
    job: TryJob, queue: str, success: bool, value: Any, outcome: Outcome, finished_ms: int
) -> dict[str, Any]:
    """The body of this try's result envelope (see :func:`worker.protocol.records.result_record`)."""
    return result_record(
        job.keys.job_id,
        queue,
        (job.try_number, job.task, job.args, job.kwargs, job.enqueued_ms),
        (success, value, outcome.value),
        job.started_ms,
        finished_ms,
        job.interruptions,
    )


def bare_job(keys: JobKeys, token: str, started: StartedTry, now_ms: int) -> TryJob:
    """The job as far as it is known before its body is decoded (task "?"): what a refused job records."""
    return TryJob(keys, token, started.envelope, "?", (), {}, 0, now_ms, started.failures + 1, 1, 0)


def refusal(keys: JobKeys, started: StartedTry, max_envelope_bytes: int) -> Exception | None:
    """Why the job cannot even be decoded (its records are corrupt, its envelope too large or gone), if so."""
    if started.problem is not None:
        again = f"`jobq dlq replay {keys.job_id}` runs it afresh" if started.envelope else "enqueue it again"
        return CorruptJobRecord(
            f"job {keys.job_id} has a corrupt record in Redis: {started.problem}; it was dead-lettered without "
            f"running and its keys were removed ({again})"
        )
    if started.oversize_bytes:  # not even loaded: its dead letter keeps no envelope
        return EnvelopeTooLarge("?", started.oversize_bytes, max_envelope_bytes)
    if started.envelope is None:
        return JobExpired(f"job {keys.job_id} expired before it was started")
    return None


def decoded_job(
    keys: JobKeys, token: str, started: StartedTry, now_ms: int, body: dict[str, Any], *, max_tries: int = 1
) -> TryJob:
    """The job a decoded body describes, about to run its next try; :class:`SerializationError` when its
    enqueue time is out of range."""
    enqueued_ms = int(body["et"])
    if not ENQUEUED_MS_RANGE[0] <= enqueued_ms <= ENQUEUED_MS_RANGE[1]:
        raise SerializationError(f"unable to decode job: et (enqueue time in ms) {body['et']!r} is out of range")
    return TryJob(
        keys=keys,
        token=token,
        envelope=started.envelope,
        task=body["f"],
        args=tuple(body["a"]),
        kwargs=body["k"],  # the body is this worker's own freshly decoded dict: no copy needed
        enqueued_ms=enqueued_ms,
        started_ms=now_ms,
        # arq's _job_try lets a producer say which try this is; it never lowers the count.
        try_number=max(started.failures + 1, body.get("t") or 1),
        max_tries=max_tries,
        interruptions=started.interruptions,
    )


def dead_letter_entry(job: TryJob, queue: str, error: dict[str, str | None], now_ms: int) -> bytes:
    """The stored dead letter of ``job``, failed with ``error`` (see ``error_to_dict``): always writable.

    Fields JSON cannot hold (text that is not UTF-8, numbers past 64 bits) are made safe rather than
    losing the entry; the envelope is kept as the raw bytes it was stored as.
    """
    text, is_b64 = DeadLetter.encode_envelope(job.envelope)
    entry = DeadLetter(
        job_id=job.keys.job_id,
        queue=queue,
        task=job.task,
        error_type=str(error["type"]),
        message=str(error["message"]),
        traceback=error["traceback"],
        tries=job.try_number,
        interruptions=job.interruptions,
        enqueued_at_ms=job.enqueued_ms,
        failed_at_ms=now_ms,
        envelope=text,
        envelope_base64=is_b64,
    )
    try:
        return entry.to_json()
    except TypeError:  # orjson's JSONEncodeError
        return replace(
            entry,
            task=_utf8(entry.task),
            error_type=_utf8(entry.error_type),
            message=_utf8(entry.message),
            traceback=None if entry.traceback is None else _utf8(entry.traceback),
            enqueued_at_ms=entry.enqueued_at_ms if -(2**63) <= entry.enqueued_at_ms < 2**63 else 0,
        ).to_json()


def _utf8(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
