"""The jobq tasks the benchmarks run (``JOBQ_TASK_MODULES=bench.tasks``); bench/arq_worker.py has arq's twins."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable
from typing import cast

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from bench.ready import READY_KEY
from worker import JobContext, JobqSettings, RateLimit, resource, task


async def _push(ctx: JobContext, key: str, value: str) -> None:
    """Append ``value`` to the list ``key`` (redis-py types a command for its sync and asyncio clients alike)."""
    await cast("Awaitable[int]", ctx.redis.rpush(key, value))


class Empty(BaseModel):
    """No payload."""


class SleepIn(BaseModel):
    """How long :func:`sleep` sleeps."""

    seconds: float = Field(ge=0, le=60)


@task
async def noop(ctx: JobContext, payload: Empty) -> None:
    """Do nothing: what is left is the queue's own cost per job."""


@task(name="sleep")
async def sleep_task(ctx: JobContext, payload: SleepIn) -> None:
    """An I/O-bound job: wait ``seconds`` without using the CPU."""
    await asyncio.sleep(payload.seconds)


@task
async def stamp(ctx: JobContext, payload: Empty) -> float:
    """Return the wall-clock time the task body started (pickup latency = this minus the enqueue time)."""
    return time.time()


@resource
async def ready_marker(settings: JobqSettings) -> AsyncIterator[None]:
    """Opened when the worker starts (module-level resources are): tells the harness this process is up."""
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await client.set(READY_KEY.format(pid=os.getpid()), repr(time.time()), ex=3600)
    finally:
        await client.aclose()
    yield None


class MarkIn(BaseModel):
    """Which run and tag :func:`mark` records, and how long it then sleeps."""

    run: str
    tag: str
    seconds: float = Field(0.0, ge=0, le=60)


class TenantMarkIn(BaseModel):
    """:func:`fair_mark`'s payload: the tenant is its fairness key."""

    run: str
    tenant: str
    seconds: float = Field(0.0, ge=0, le=60)


@task
async def mark(ctx: JobContext, payload: MarkIn) -> None:
    """Record the start (``bench:order:<run>``, a list of tags), then sleep: the flow measurements' job."""
    await _push(ctx, f"bench:order:{payload.run}", payload.tag)
    if payload.seconds:
        await asyncio.sleep(payload.seconds)


@task(fair_by="tenant")
async def fair_mark(ctx: JobContext, payload: TenantMarkIn) -> None:
    """:func:`mark`, served round-robin by tenant."""
    await _push(ctx, f"bench:order:{payload.run}", payload.tenant)
    if payload.seconds:
        await asyncio.sleep(payload.seconds)


@task(concurrency=4)
async def capped_sleep(ctx: JobContext, payload: SleepIn) -> None:
    """:func:`sleep_task` with at most 4 at once per worker: the others wait parked for a slot."""
    await asyncio.sleep(payload.seconds)


class RunIn(BaseModel):
    """Which run :func:`rated_mark` and :func:`unrated_mark` record their starts for."""

    run: str


#: bench/rate.py's rate limit: 50 starts a second on one key, 5 at once.
BENCH_RATE = RateLimit("bench", per_s=50, burst=5)


@task(rate_limit=BENCH_RATE)
async def rated_mark(ctx: JobContext, payload: RunIn) -> None:
    """Record the start's wall time (``bench:starts:<run>``): the rate-limit measurement's job."""
    await _push(ctx, f"bench:starts:{payload.run}", repr(time.time()))


#: The same rate, keyed by the payload (every job of one run shares the key): the producer finds each job's key.
BENCH_KEYED_RATE = RateLimit("bench-keyed", per_s=50, burst=5, key=lambda p: p.run)


@task(rate_limit=BENCH_KEYED_RATE)
async def keyed_rated_mark(ctx: JobContext, payload: RunIn) -> None:
    """:func:`rated_mark` under a keyed rate limit (its key from the payload)."""
    await _push(ctx, f"bench:starts:{payload.run}", repr(time.time()))


@task
async def unrated_mark(ctx: JobContext, payload: RunIn) -> None:
    """:func:`rated_mark` without the rate limit (the baseline of its Redis cost)."""
    await _push(ctx, f"bench:starts:{payload.run}", repr(time.time()))


class IndexIn(BaseModel):
    """:func:`member`'s payload: its place in the chord (or in the batch of plain jobs)."""

    i: int


@task
async def member(ctx: JobContext, payload: IndexIn) -> int:
    """A no-op chord member, and its twin as a plain job: it returns its index, so the callback can check order."""
    return payload.i


class GatherIn(BaseModel):
    """:func:`gather`'s payload: the run it counts itself for, and the members' results."""

    run: str
    values: list[int] = Field(default_factory=list)


@task(timeout_s=120)
async def gather(ctx: JobContext, payload: GatherIn) -> dict[str, int]:
    """A chord's callback: counts its own runs (``bench:callback:<run>``) and checks the results' order."""
    runs = await cast("Awaitable[int]", ctx.redis.incr(f"bench:callback:{payload.run}"))
    in_order = payload.values == list(range(len(payload.values)))
    return {"runs": int(runs), "count": len(payload.values), "in_order": int(in_order)}
