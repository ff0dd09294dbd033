"""Tasks with fleet-wide rate limits (loaded through JOBQ_TASK_MODULES=tests.rate_tasks)."""

from __future__ import annotations

from pydantic import BaseModel

from tests.harness import reply
from worker import JobContext, Limit, RateLimit, task


class RatedIn(BaseModel):
    run: str
    key: str = "a"


async def _record_start(ctx: JobContext, payload: RatedIn) -> None:
    """Record each start (key, wall time, try, job id) in ``probe:<run>:starts``, for the tests to measure."""
    probe = f"probe:{payload.run}:starts"
    await reply(ctx.redis.rpush(probe, f"{payload.key}|{ctx.clock():.6f}|{ctx.try_number}|{ctx.job_id}"))
    await ctx.redis.expire(probe, 600)


@task(timeout_s=30, rate_limit=RateLimit("twenty", per_s=20, burst=2, key=lambda p: p.key))
async def rated(ctx: JobContext, payload: RatedIn) -> int:
    """20 starts a second per key, 2 at once at most: the integration test measures the rate."""
    await _record_start(ctx, payload)
    return ctx.try_number


@task(timeout_s=30, rate_limit=RateLimit("fifty", per_s=50, burst=5))
async def rated_fifty(ctx: JobContext, payload: RatedIn) -> int:
    """50 starts a second on one key (the benchmark's task)."""
    await _record_start(ctx, payload)
    return ctx.try_number


@task(timeout_s=30)
async def unrated(ctx: JobContext, payload: RatedIn) -> int:
    """The same work without a rate limit (the baseline of its Redis cost)."""
    await _record_start(ctx, payload)
    return ctx.try_number


@task(timeout_s=5, rate_limit=RateLimit("slow", per_s=1, key=lambda p: p.key))
async def once_a_second(ctx: JobContext, payload: RatedIn) -> int:
    """One start a second per key (unit tests: a second job of a key within the second waits)."""
    return ctx.try_number


@task(
    timeout_s=5,
    limit=Limit("pair", 2, key=lambda p: p.key),
    rate_limit=RateLimit("slow-pair", per_s=1, key=lambda p: p.key),
)
async def limited_and_rated(ctx: JobContext, payload: RatedIn) -> int:
    """At most 2 at once and 1 start a second per key: a start over the rate gives its concurrency slot back."""
    return ctx.try_number
