"""The data of one try: the executor's settings, the decoded job about to run, and its result body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .finish import StartedTry
from .keys import JobKeys
from .policy import RetryPolicy
from .states import Outcome


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


def result_body(
    job: TryJob, queue: str, success: bool, value: Any, outcome: Outcome, finished_ms: int
) -> dict[str, Any]:
    """The body of a job's result envelope: arq's fields (t, f, a, k, et, s, r, st, ft, q) plus jobq's."""
    return {
        "t": job.try_number,
        "f": job.task,
        "a": list(job.args),
        "k": job.kwargs,
        "et": job.enqueued_ms,
        "s": success,
        "r": value,
        "st": job.started_ms,
        "ft": finished_ms,
        "q": queue,
        "id": job.keys.job_id,
        "o": outcome.value,
        "n": job.interruptions,
    }


def decoded_job(
    keys: JobKeys, token: str, started: StartedTry, now_ms: int, body: dict[str, Any], *, max_tries: int = 1
) -> TryJob:
    """The job a decoded body describes, about to run its next try."""
    return TryJob(
        keys=keys,
        token=token,
        envelope=started.envelope,
        task=body["f"],
        args=tuple(body["a"]),
        kwargs=body["k"],  # the body is this worker's own freshly decoded dict: no copy needed
        enqueued_ms=int(body["et"]),
        started_ms=now_ms,
        # arq's _job_try lets a producer say which try this is; it never lowers the count.
        try_number=max(started.failures + 1, body.get("t") or 1),
        max_tries=max_tries,
        interruptions=started.interruptions,
    )
