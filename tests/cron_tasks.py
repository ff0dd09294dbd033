"""Scheduled tasks for the cron tests (a module of their own, so other tests' workers run no ticks)."""

from __future__ import annotations

from pydantic import BaseModel

from worker import JobContext, Schedule, task


class TickIn(BaseModel):
    label: str = "tick"


@task(timeout_s=5)
async def record_tick(ctx: JobContext, payload: TickIn) -> str:
    """Counts how many times each tick (job id) ran, for the test to read."""
    await ctx.redis.incr(f"probe:{ctx.queue_name}:{ctx.job_id}")
    await ctx.redis.expire(f"probe:{ctx.queue_name}:{ctx.job_id}", 600)
    return ctx.job_id


every_second = Schedule(record_tick, every_s=1, name="every-second")
quarter_hourly = Schedule(record_tick, cron="*/15 * * * *", payload={"label": "report"}, name="quarter-hourly")
