"""Aborting a job by id: a queued job is removed at once, a running one is cancelled by its worker.

A running job gets an abort marker (``jobq:abort:<id>``); its worker checks the markers of the jobs
it runs every ``JOBQ_ABORT_CHECK_S`` and cancels the matches, which end as ABORTED and are never
retried. The marker is deleted when the job ends, and enqueueing a new job under the same id
deletes any marker left over, so an abort never reaches a later job that reuses the id.
"""

from __future__ import annotations

import contextlib
from typing import Any

from arq.connections import ArqRedis

from worker.errors import JobAborted, SerializationError
from worker.protocol.dependencies import DEP_PREFIXES
from worker.protocol.keys import JobKeys, next_key, wait_key
from worker.protocol.records import result_record
from worker.protocol.scripts import Scripts
from worker.protocol.serialization import EnvelopeCodec
from worker.states import JobStatus, Outcome

#: How long an abort marker waits for its job, at most (it is deleted when the job ends).
ABORT_MARKER_TTL_MS = 86_400_000

_STATUS = {
    b"aborted": JobStatus.ABORTED,
    b"running": JobStatus.IN_PROGRESS,
    b"not_found": JobStatus.NOT_FOUND,
}


def aborted_result(codec: EnvelopeCodec, job_id: str, queue: str, envelope: bytes | None, now_ms: int) -> bytes:
    """The result envelope of a job aborted before it started (arq's result layout)."""
    body: dict[str, Any] = {"f": "", "a": [], "k": {}, "et": now_ms}
    if envelope is not None:
        with contextlib.suppress(SerializationError):  # an undecodable job is aborted all the same
            body = codec.loads_job(envelope, job_id=job_id, queue=queue)
    job = (0, body.get("f", ""), body.get("a", []), body.get("k", {}), body.get("et", now_ms))
    error = JobAborted(f"job {job_id} was aborted on request before it started")
    result = result_record(job_id, queue, job, (False, error, Outcome.ABORTED.value), now_ms, now_ms, 0)
    return codec.dumps(result)


async def request_abort(
    redis: ArqRedis, codec: EnvelopeCodec, keys: JobKeys, *, now_ms: int, result_ttl_ms: int
) -> JobStatus | None:
    """Abort the job: ABORTED (it was queued and is gone), IN_PROGRESS (its worker will cancel it),
    NOT_FOUND, or ``None`` when it had already finished."""
    envelope = await redis.get(keys.job)
    result = aborted_result(codec, keys.job_id, keys.queue, envelope, now_ms)
    answer = await Scripts.of(redis)["abort"](  # worker/protocol/lua/abort.lua
        [
            keys.queue, keys.job, keys.in_progress, keys.result, keys.abort, keys.retry, keys.meta,
            next_key(keys.job_id), wait_key(keys.job_id),
        ],
        [keys.job_id, result, result_ttl_ms, ABORT_MARKER_TTL_MS, DEP_PREFIXES, now_ms],
    )  # fmt: skip
    return _STATUS.get(answer if isinstance(answer, bytes) else str(answer).encode())
