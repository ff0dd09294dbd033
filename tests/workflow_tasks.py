"""Tasks of the workflow tests (loaded through JOBQ_TASK_MODULES=tests.workflow_tasks)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from worker import JobContext, PermanentError, task
from worker.taskdef.workflow import StepOutcome


class Number(BaseModel):
    value: int


class Numbers(BaseModel):
    values: list[int]
    label: str = ""


class Outcomes(BaseModel):
    outcomes: list[StepOutcome]


#: Values that `maybe_fail` refuses while they are listed here (a test "fixes" the bug by removing one).
BROKEN: set[int] = set()


@task(timeout_s=5)
async def increment(ctx: JobContext, payload: Number) -> Number:
    return Number(value=payload.value + 1)


@task(timeout_s=5)
async def produce(ctx: JobContext, payload: Number) -> int:
    return payload.value


@task(timeout_s=5)
async def maybe_fail(ctx: JobContext, payload: Number) -> int:
    if payload.value in BROKEN:
        raise PermanentError(f"value {payload.value} is broken")
    return payload.value


@task(timeout_s=5)
async def total(ctx: JobContext, payload: Numbers) -> int:
    return sum(payload.values)


@task(timeout_s=5)
async def tally(ctx: JobContext, payload: Outcomes) -> dict[str, int]:
    ok = sum(1 for o in payload.outcomes if o.ok)
    return {"ok": ok, "failed": len(payload.outcomes) - ok}


@task(timeout_s=5)
async def report(ctx: JobContext, payload: Number) -> str:
    return f"report {payload.value}"


@task(timeout_s=5)
async def slow_produce(ctx: JobContext, payload: Number) -> int:
    await asyncio.sleep(0.05)
    return payload.value


@task(timeout_s=30)
async def collect(ctx: JobContext, payload: Numbers) -> dict[str, int]:
    """A chord's callback that counts its own runs (key ``wfprobe:<label>``): exactly once, or a test fails."""
    runs = await ctx.redis.incr(f"wfprobe:{payload.label}")
    ordered = payload.values == sorted(payload.values)
    return {"runs": int(runs), "count": len(payload.values), "sum": sum(payload.values), "in_order": int(ordered)}


class Flaky(BaseModel):
    value: int
    label: str


@task(timeout_s=5)
async def fail_while_broken(ctx: JobContext, payload: Flaky) -> int:
    """`maybe_fail` for worker processes: refuses its value while it is in the Redis set ``wfbroken:<label>``."""
    if await ctx.redis.sismember(f"wfbroken:{payload.label}", str(payload.value)):  # type: ignore[misc]
        raise PermanentError(f"value {payload.value} is broken")
    return payload.value
