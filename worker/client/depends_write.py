"""The write of a job given ``depends_on``: one script call (``worker/protocol/lua/enqueue_after.lua``) that looks
at each dependency and writes the job queued, blocked or cancelled, atomically with their ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from redis.exceptions import ResponseError

from worker.errors import InvalidJobOptions
from worker.protocol.keys import (
    DONE_PREFIX,
    MARKER_PREFIX,
    NEXT_PREFIX,
    WAIT_PREFIX,
    job_key_prefix,
    result_key_prefix,
)
from worker.protocol.scripts import Scripts
from worker.states import JobStatus

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from worker.client.enqueue_write import PreparedJob

__all__ = ["MAX_DEPENDENCIES", "write_after"]

#: The most jobs one job may depend on (a workflow's chord callback has no such bound).
MAX_DEPENDENCIES = 1000
_PREFIXES = orjson.dumps(
    [job_key_prefix, result_key_prefix, DONE_PREFIX, WAIT_PREFIX, NEXT_PREFIX, MARKER_PREFIX]
).decode()
_STATUS = {b"queued": JobStatus.QUEUED, b"blocked": JobStatus.BLOCKED, b"cancelled": JobStatus.CANCELLED}


async def write_after(redis: ArqRedis, job: PreparedJob, depends_on: list[str]) -> JobStatus | None:
    """Write ``job`` to run after ``depends_on``: its status (QUEUED, BLOCKED or CANCELLED), or ``None`` when a job
    with its id exists already (nothing written). :class:`InvalidJobOptions` names an unknown dependency."""
    script = Scripts.of(redis)["enqueue_after"]
    args = [
        job.job_id, job.body, job.ttl_ms, job.priority, orjson.dumps(depends_on), _PREFIXES, job.now_ms, "0",
    ]  # fmt: skip
    try:
        answer = await script([job.queue], args)
    except ResponseError as exc:
        message = str(exc)
        if message.startswith("JOBQ_UNKNOWN_DEPENDENCY"):
            dep = message.split(" ", 1)[1] if " " in message else "?"
            raise InvalidJobOptions(
                f"depends_on names job {dep!r}, which is neither queued, running, blocked nor finished with a stored "
                "result (unknown, or its result expired); nothing was written",
                field="depends_on",
            ) from None
        raise
    return _STATUS.get(answer if isinstance(answer, bytes) else str(answer).encode())
