"""The write of an enqueue: one script call per chunk of jobs of one queue, answered truthfully when re-sent.

Each call carries a random request id; the script (``worker/protocol/lua/enqueue.lua``) records what it
created under it, so a call that redis-py sends again after a dropped connection is answered the same and
writes nothing again. Before the first job of each queue, the Redis user's permissions are checked once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from worker.protocol.enqueue_script import ENQUEUE_KEY_PREFIXES, script_error
from worker.protocol.keys import enqueue_record, wake_channel
from worker.protocol.permissions import PermissionCheck, redis_user
from worker.protocol.scripts import Scripts
from worker.settings import JobqSettings
from worker.taskdef.registry import TaskDef


@dataclass(slots=True)  # not frozen: one is built per job of a batch, and freezing costs a microsecond each
class PreparedJob:
    """One job checked and encoded, ready to be written."""

    task: TaskDef[Any, Any]
    job_id: str
    queue: str
    score_ms: int
    ttl_ms: int
    body: bytes
    check: str  #: "1" for an id given by the caller (it may exist already), "0" for a random one


class EnqueueWriter:
    """Writes prepared jobs with the enqueue script, for one client's connection."""

    def __init__(self, redis: ArqRedis, settings: JobqSettings) -> None:
        self._script = Scripts.of(redis)["enqueue"]  # worker/protocol/lua/enqueue.lua
        # Once per queue, before its first job: refuse to enqueue what no worker with this ACL user could claim.
        self._permissions = PermissionCheck(redis, redis_user(settings))
        self._record_ttl_ms = record_ttl_ms(settings)

    async def write(self, jobs: list[PreparedJob]) -> list[int]:
        """Enqueue jobs of one queue with one script call; 1 (created) or 0 per job."""
        packed = orjson.dumps(
            [f for p in jobs for f in (p.job_id, str(p.score_ms), str(p.ttl_ms), p.body.decode(), p.check)]
        )
        queue = jobs[0].queue
        # A new request id per call, the same for redis-py's re-sends of it: the script answers those from its record.
        record = enqueue_record(os.urandom(12).hex())
        await self._permissions.ensure(queue)
        try:
            created = await self._script(
                [queue, record], [wake_channel(queue), packed, self._record_ttl_ms, ENQUEUE_KEY_PREFIXES]
            )
        except ResponseError as exc:
            raise self._permissions.translate(exc, queue) or script_error(exc, queue) from None
        return list(created)


def record_ttl_ms(settings: JobqSettings) -> int:
    """How long an enqueue's record is kept: longer than redis-py may take to re-send the call.

    redis-py sends a command again up to 3 times after a dropped connection (``worker.protocol.connection``),
    each time after a backoff of at most 1 s and within a connect and a socket timeout.
    """
    per_try_s = settings.redis_connect_timeout_s + settings.redis_socket_timeout_s + 1
    return round((4 * per_try_s + 30) * 1000)
