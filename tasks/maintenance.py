"""Housekeeping on a schedule: trim old dead letters, and keep a history of queue snapshots.

Dead letters are trimmed whenever one is written; ``trim_dead_letters`` also trims a queue whose
failures have stopped, so nothing outlives ``JOBQ_DEAD_LETTER_RETENTION_S``. ``record_queue_stats``
appends a snapshot (ready, deferred, running, oldest ready age, dead letters, workers) to
``jobq:stats:<queue>``, keeping the last day at one a minute.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from worker import DeadLetterStore, JobContext, Schedule, queue_stats, task

#: Snapshots kept per queue (one a minute: a day).
STATS_HISTORY = 1440


class NoInput(BaseModel):
    """These tasks take no input."""


class TrimOut(BaseModel):
    """How many dead letters were dropped, and how many remain."""

    dropped: int
    remaining: int


@task(timeout_s=300, max_tries=2)
async def trim_dead_letters(ctx: JobContext, payload: NoInput) -> TrimOut:
    """Drop this queue's dead letters past their retention, and the oldest beyond the maximum."""
    settings = ctx.settings
    store = DeadLetterStore(ctx.redis, ctx.queue_name, job_expires_s=settings.job_expires_s, clock_ms=_ms(ctx))
    dropped = await store.trim(
        retention_s=settings.dead_letter_retention_s, max_entries=settings.dead_letter_max_entries
    )
    return TrimOut(dropped=dropped, remaining=await store.count())


class StatsOut(BaseModel):
    """The snapshot that was recorded."""

    queued: int
    ready: int
    deferred: int
    running: int
    oldest_ready_age_s: float
    dead_letters: int
    workers: int


@task(timeout_s=60, max_tries=1)
async def record_queue_stats(ctx: JobContext, payload: NoInput) -> StatsOut:
    """Append a snapshot of this queue to its history (``jobq:stats:<queue>``)."""
    stats = await queue_stats(ctx.redis, ctx.queue_name, now=ctx.clock())
    key = f"jobq:stats:{ctx.queue_name}"
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.lpush(key, stats_json := StatsOut.model_validate(stats.to_dict()).model_dump_json())
        pipe.ltrim(key, 0, STATS_HISTORY - 1)
        await pipe.execute()
    return StatsOut.model_validate_json(stats_json)


def _ms(ctx: JobContext) -> Callable[[], int]:
    return lambda: round(ctx.clock() * 1000)


hourly_dead_letter_trim = Schedule(trim_dead_letters, cron="17 * * * *", misfire="skip")
minutely_queue_stats = Schedule(record_queue_stats, every_s=60, misfire="skip")
