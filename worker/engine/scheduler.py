"""Enqueueing the ticks of the schedules tasks declare (:mod:`worker.taskdef.cron`), exactly once per tick.

Every worker computes the ticks on its own and enqueues each as the job ``cron:<name>:<tick ms>``
through the producer's enqueue script, guarded (:meth:`Guard.tick`) to refuse any tick not later than the
last one recorded in ``jobq:cron:<queue>:<name>``, so each tick is enqueued once across the fleet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis

from worker.protocol.enqueue_script import (
    DEFAULT_RECORD_TTL_MS,
    GIVEN_ID,
    Guard,
    Placement,
    call_enqueue,
    pack_jobs,
)
from worker.protocol.keys import cron_ledger_key
from worker.protocol.records import job_record
from worker.protocol.scripts import Scripts
from worker.protocol.serialization import EnvelopeCodec
from worker.taskdef.cron import ActiveSchedule, Schedule

logger = logging.getLogger("jobq.cron")


def tick_job_id(name: str, tick: datetime) -> str:
    """The id of the job that runs one tick."""
    return f"cron:{name}:{round(tick.timestamp() * 1000)}"


class CronScheduler:
    """Enqueues the due ticks of the active schedules; every worker runs one."""

    def __init__(
        self,
        redis: ArqRedis,
        codec: EnvelopeCodec,
        queue: str,
        schedules: list[ActiveSchedule],
        *,
        misfire_grace_s: float,
        lookahead_s: float,
        job_expires_s: float,
        clock: Callable[[], float] = time.time,
        record_ttl_ms: int = DEFAULT_RECORD_TTL_MS,
    ) -> None:
        self.schedules = schedules
        self._redis = redis
        self._codec = codec
        self._queue = queue
        self._grace = timedelta(seconds=misfire_grace_s)
        self._lookahead = timedelta(seconds=lookahead_s)
        self._expires_ms = round(job_expires_s * 1000)
        self._clock = clock
        self._record_ttl_ms = record_ttl_ms
        # The producer's script (worker/protocol/lua/enqueue.lua): a tick wakes the idle workers as an enqueue does.
        self._enqueue = Scripts.of(redis)["enqueue"]

    async def last_tick(self, name: str) -> datetime | None:
        """The last tick of ``name`` enqueued by any worker."""
        raw = await self._redis.get(cron_ledger_key(self._queue, name))
        return None if raw is None else datetime.fromtimestamp(int(raw) / 1000, tz=UTC)

    async def enqueue_due(self) -> int:
        """Enqueue every tick due now (or within the look-ahead); return how many this worker enqueued."""
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        enqueued = 0
        for active in self.schedules:
            if active.next_tick is None:
                last = await self.last_tick(active.schedule.name)
                active.next_tick = active.timing.next_after(last or now)
            if active.next_tick < now - self._grace:
                active.next_tick = self._after_misfire(active, now)
            while active.next_tick <= now + self._lookahead:
                enqueued += await self._enqueue_tick(active.schedule, active.next_tick)
                active.next_tick = active.timing.next_after(active.next_tick)
        return enqueued

    def _after_misfire(self, active: ActiveSchedule, now: datetime) -> datetime:
        missed_from = active.next_tick
        if active.schedule.misfire == "skip":
            resume = active.timing.next_after(now)
            logger.warning("schedule %s missed its ticks since %s; skipping them", active.schedule.name, missed_from)
            return resume
        latest = active.timing.latest_at_or_before(now)
        logger.warning(
            "schedule %s missed its ticks since %s; running the latest (%s) once",
            active.schedule.name,
            missed_from,
            latest,
        )
        return latest

    async def _enqueue_tick(self, schedule: Schedule, tick: datetime) -> int:
        now_ms = round(self._clock() * 1000)
        tick_ms = round(tick.timestamp() * 1000)
        job_id = tick_job_id(schedule.name, tick)
        model = schedule.task.validate(schedule.payload)
        payload = model.model_dump(mode="json")
        # what arq's serialize_job writes, bound to the tick's job id and queue
        priority, rate = schedule.task.priority, schedule.task.rate_limit
        options: dict[str, Any] = {"priority": priority} if priority else {}
        if rate is not None and (rate_key := rate.key_for_claim(model)) is not None:
            options["rate_key"] = rate_key  # the claim checks the rate with it, as for any producer's job
        body = job_record(schedule.task.name, payload, now_ms, options or None)
        queue = schedule.task.queue or self._queue  # the ledger stays this worker's queue's: one per fleet
        envelope = self._codec.dumps_job(body, job_id=job_id, queue=queue)
        ttl_ms = max(tick_ms, now_ms) - now_ms + self._expires_ms
        packed = pack_jobs([(job_id, tick_ms, ttl_ms, envelope.decode(), GIVEN_ID)])
        guard = Guard.tick(self._queue, schedule.name, tick_ms)
        placement = Placement([priority], now_ms) if priority else None
        call = call_enqueue(self._enqueue, queue, packed, self._record_ttl_ms, guard, placement=placement)
        done = await call == [1]
        if done:
            logger.info("schedule %s: enqueued tick %s as job %s", schedule.name, tick.isoformat(), job_id)
        return int(done)
