"""Tasks with deduplication modes (loaded through JOBQ_TASK_MODULES=tests.dedup_tasks)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from tests.harness import reply
from worker import Debounce, JobContext, Throttle, UniqueFor, task


class UserIn(BaseModel):
    user: str
    note: str = ""
    seconds: float = 0.0  # how long a run takes (integration tests)


@task(dedup=UniqueFor(600, key=lambda p: p.user))
async def rebuild(ctx: JobContext, payload: UserIn) -> str:
    await reply(ctx.redis.rpush(f"probe:{ctx.queue_name}:rebuild", payload.note))
    await ctx.redis.expire(f"probe:{ctx.queue_name}:rebuild", 600)
    await asyncio.sleep(payload.seconds)
    return payload.note


@task(dedup=Throttle(60, key=lambda p: p.user))
async def notify(ctx: JobContext, payload: UserIn) -> str:
    return payload.note


@task(dedup=Debounce(5, key=lambda p: p.user))
async def reindex(ctx: JobContext, payload: UserIn) -> str:
    await reply(ctx.redis.rpush(f"probe:{ctx.queue_name}:reindex", payload.note))
    await ctx.redis.expire(f"probe:{ctx.queue_name}:reindex", 600)
    await asyncio.sleep(payload.seconds)
    return payload.note


@task(dedup=Debounce(1.5, key=lambda p: p.user))
async def reindex_soon(ctx: JobContext, payload: UserIn) -> str:
    """A short Debounce window, for tests with a real worker."""
    await reply(ctx.redis.rpush(f"probe:{ctx.queue_name}:reindex_soon", payload.note))
    await ctx.redis.expire(f"probe:{ctx.queue_name}:reindex_soon", 600)
    return payload.note


@task
async def plain(ctx: JobContext, payload: UserIn) -> str:
    return payload.note
