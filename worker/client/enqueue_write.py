"""The write of an enqueue: one script call per chunk of jobs of one queue, answered truthfully when re-sent.

Each call carries a random request id; the script (``worker/protocol/lua/enqueue.lua``) records what it
created under it, so a call that redis-py sends again after a dropped connection is answered the same and
writes nothing again. Before the first job of each queue, the Redis user's permissions are checked once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from worker.protocol.enqueue_script import JobFlag, Placement, call_enqueue, pack_jobs, record_ttl_ms, script_error
from worker.protocol.keys import QUEUES_INDEX
from worker.protocol.permissions import PermissionCheck, redis_user
from worker.protocol.scripts import Scripts
from worker.settings import JobqSettings
from worker.taskdef.registry import TaskDef

if TYPE_CHECKING:
    from worker.client.dedup_write import DedupPlan


@dataclass(slots=True)  # not frozen: one is built per job of a batch, and freezing costs a microsecond each
class PreparedJob:
    """One job checked and encoded, ready to be written."""

    task: TaskDef[Any, Any]
    job_id: str
    queue: str
    score_ms: int
    ttl_ms: int
    body: bytes
    flag: JobFlag  #: GIVEN_ID for an id given by the caller (it may exist already), RANDOM_ID for a random one
    priority: int = 0  #: its priority within the queue (see worker.protocol.priority)
    now_ms: int = 0  #: the producer's time when it was prepared (tells a due job from a deferred one)
    fair_key: str = ""  #: for a task with ``fair_by``: the key it is served fairly by (worker.protocol.fairness)
    dedup: DedupPlan | None = None  #: for a task with a dedup mode: written by worker.client.dedup_write instead


logger = logging.getLogger("jobq.client")


class EnqueueWriter:
    """Writes prepared jobs with the enqueue script, for one client's connection."""

    def __init__(self, redis: ArqRedis, settings: JobqSettings) -> None:
        self._script = Scripts.of(redis)["enqueue"]  # worker/protocol/lua/enqueue.lua
        # Once per queue, before its first job: refuse to enqueue what no worker with this ACL user could claim.
        self._permissions = PermissionCheck(redis, redis_user(settings))
        self._record_ttl_ms = record_ttl_ms(settings)
        self._redis = redis
        self._indexed: set[str] = set()

    async def write(self, jobs: list[PreparedJob]) -> list[int]:
        """Enqueue jobs of one queue with one script call; 1 (created) or 0 per job."""
        packed = pack_jobs((p.job_id, p.score_ms, p.ttl_ms, p.body.decode(), p.flag) for p in jobs)
        queue = jobs[0].queue
        await self._permissions.ensure(queue)
        try:
            placement = _placement(jobs)
            created = await call_enqueue(self._script, queue, packed, self._record_ttl_ms, placement=placement)
        except ResponseError as exc:
            raise self._permissions.translate(exc, queue) or script_error(exc, queue) from None
        await self.index(queue)
        return created

    async def permissions(self, queue: str) -> None:
        """Once per queue: refuse to write what no worker with this client's ACL user could claim."""
        await self._permissions.ensure(queue)

    async def index(self, queue: str) -> None:
        """Once per queue, after a write it accepted: list it in the queues index (stats show the queues that
        have jobs but no worker)."""
        if queue not in self._indexed:
            self._indexed.add(queue)
            try:
                await self._redis.sadd(QUEUES_INDEX, queue)  # type: ignore[misc]  # redis-py types it as maybe sync
            except ResponseError as exc:  # an ACL without jobq:queues: the job is written; only the listing misses it
                logger.warning("could not list queue %r in %s (%s); stats list it once a worker serves it",
                               queue, QUEUES_INDEX, exc)  # fmt: skip


def _placement(jobs: list[PreparedJob]) -> Placement | None:
    """The jobs' priorities and fairness keys, when any job has one (else the script's defaults hold)."""
    priorities = [p.priority for p in jobs]
    fair_keys = [p.fair_key for p in jobs]
    if not any(priorities) and not any(fair_keys):
        return None
    return Placement(priorities, jobs[0].now_ms, fair_keys if any(fair_keys) else None)


__all__ = ["EnqueueWriter", "PreparedJob", "record_ttl_ms"]
