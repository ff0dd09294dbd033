"""Tasks used by the test suite (loaded through JOBQ_TASK_MODULES=tests.sample_tasks)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from worker import JobContext, RetryPolicy, task


class AddIn(BaseModel):
    a: int
    b: int = Field(ge=0)


class AddOut(BaseModel):
    total: int
    try_number: int


@task(timeout_s=5)
async def add(ctx: JobContext, payload: AddIn) -> AddOut:
    return AddOut(total=payload.a + payload.b, try_number=ctx.try_number)


class FlakyIn(BaseModel):
    failures: int = Field(ge=0)


class FlakyError(RuntimeError):
    pass


@task(timeout_s=5, retry=RetryPolicy(max_tries=3, backoff_base_s=10.0, backoff_max_s=10.0, jitter=False))
async def flaky(ctx: JobContext, payload: FlakyIn) -> int:
    if ctx.try_number <= payload.failures:
        raise FlakyError(f"failure on try {ctx.try_number}")
    return ctx.try_number


class SleepIn(BaseModel):
    seconds: float


@task(timeout_s=0.2, max_tries=1)
async def slow(ctx: JobContext, payload: SleepIn) -> float:
    await asyncio.sleep(payload.seconds)
    return payload.seconds


@task(timeout_s=0.05, max_tries=1)
async def swallow_cancel(ctx: JobContext, payload: SleepIn) -> str:
    try:
        await asyncio.sleep(payload.seconds)
    except asyncio.CancelledError:
        await asyncio.sleep(0.1)  # misbehaving task: ignores the cancellation, returns late
    return "returned anyway"


@task(timeout_s=5, concurrency=1)
async def limited(ctx: JobContext, payload: SleepIn) -> float:
    await asyncio.sleep(payload.seconds)
    return payload.seconds


@task(timeout_s=5)
async def flaky_default(ctx: JobContext, payload: FlakyIn) -> int:
    """Like flaky, but with the settings' retry policy."""
    if ctx.try_number <= payload.failures:
        raise FlakyError(f"failure on try {ctx.try_number}")
    return ctx.try_number
