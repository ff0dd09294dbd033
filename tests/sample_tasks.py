"""Tasks used by the test suite (loaded through JOBQ_TASK_MODULES=tests.sample_tasks)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from tests.harness import reply
from worker import JobContext, Limit, PermanentError, RetryLater, RetryPolicy, task


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


class NoteIn(BaseModel):
    note: str = "x"
    after_s: float = 0.0


@task(timeout_s=5)
async def permanent(ctx: JobContext, payload: NoteIn) -> None:
    raise PermanentError(f"cannot ever work: {payload.note}")


@task(timeout_s=5, max_tries=3)
async def retry_later(ctx: JobContext, payload: NoteIn) -> int:
    if ctx.try_number == 1:
        raise RetryLater(payload.after_s, "rate limited")
    return ctx.try_number


@task(timeout_s=5)
async def key_error(ctx: JobContext, payload: NoteIn) -> None:
    raise KeyError(payload.note)


@task(timeout_s=5)
async def unserializable(ctx: JobContext, payload: NoteIn) -> object:
    return object()


@task(timeout_s=0.05, max_tries=1)
async def ignore_cancel(ctx: JobContext, payload: SleepIn) -> str:
    """Swallows every cancellation and goes on for ``seconds``: a task that must be abandoned."""
    loop = asyncio.get_running_loop()
    end = loop.time() + payload.seconds
    while loop.time() < end:
        try:
            await asyncio.sleep(end - loop.time())
        except asyncio.CancelledError:
            continue
    return "finished long after its timeout"


@task(timeout_s=5)
async def progressing(ctx: JobContext, payload: SleepIn) -> str:
    await ctx.report_progress(0.25, "a quarter")
    await asyncio.sleep(payload.seconds)
    await ctx.report_progress(1.0, "done")
    return "ok"


class HostIn(BaseModel):
    host: str
    seconds: float = 0.0


@task(timeout_s=5, limit=Limit(name="host", max_concurrent=1, key=lambda p: p.host))
async def per_host(ctx: JobContext, payload: HostIn) -> str:
    await asyncio.sleep(payload.seconds)
    return payload.host


# Used by the integration tests, which watch these keys from outside the worker processes.
CONCURRENCY_LUA = """
local now = redis.call('INCR', KEYS[1])
if now > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], now) end
redis.call('EXPIRE', KEYS[1], 600)
redis.call('EXPIRE', KEYS[2], 600)
return now
"""


async def _probed_sleep(ctx: JobContext, probe: str, seconds: float) -> None:
    """Sleep, recording how many jobs sharing ``probe`` run at once (``<probe>:now``, peak in ``<probe>:max``)."""
    current, peak = f"{probe}:now", f"{probe}:max"
    await reply(ctx.redis.eval(CONCURRENCY_LUA, 2, current, peak))
    try:
        await asyncio.sleep(seconds)
    finally:
        await ctx.redis.decr(current)


class FleetIn(BaseModel):
    run: str
    host: str
    seconds: float


@task(timeout_s=30, limit=Limit(name="fleet-host", max_concurrent=2, key=lambda p: f"{p.run}:{p.host}"))
async def fleet_fetch(ctx: JobContext, payload: FleetIn) -> str:
    """Records how many jobs of the same host run at once, across all worker processes."""
    await _probed_sleep(ctx, f"probe:{payload.run}:{payload.host}", payload.seconds)
    return payload.host


class CappedIn(BaseModel):
    run: str
    seconds: float


@task(timeout_s=30, concurrency=4)
async def capped(ctx: JobContext, payload: CappedIn) -> int:
    """At most 4 at once in one worker: the others wait for a slot."""
    await _probed_sleep(ctx, f"probe:{payload.run}", payload.seconds)
    return ctx.try_number


@task(timeout_s=30)
async def uncapped(ctx: JobContext, payload: CappedIn) -> int:
    """The same work as ``capped``, without the limit (the baseline of its Redis cost)."""
    await _probed_sleep(ctx, f"probe:{payload.run}", payload.seconds)
    return ctx.try_number


class TimedIn(BaseModel):
    run: str
    failures: int


@task(timeout_s=5, retry=RetryPolicy(max_tries=4, backoff_base_s=0.4, backoff_factor=2, jitter=False))
async def timed_flaky(ctx: JobContext, payload: TimedIn) -> int:
    """Records the wall-clock time of each try, then fails the first ``failures`` of them."""
    await reply(ctx.redis.rpush(f"probe:{payload.run}:tries", repr(ctx.clock())))
    await ctx.redis.expire(f"probe:{payload.run}:tries", 600)
    if ctx.try_number <= payload.failures:
        raise FlakyError(f"failure on try {ctx.try_number}")
    return ctx.try_number


class TrackedIn(BaseModel):
    run: str
    seconds: float
    hold: str = ""  # when set, the job waits (after recording its start) until probe:<run>:open:<hold> exists


@task(timeout_s=60)
async def tracked(ctx: JobContext, payload: TrackedIn) -> str:
    """Records each start (job id, wall time, worker) so tests can see re-runs and who ran what."""
    entry = f"{ctx.job_id}|{ctx.clock():.6f}|{ctx.worker_id}"
    await reply(ctx.redis.rpush(f"probe:{payload.run}:starts", entry))
    await ctx.redis.expire(f"probe:{payload.run}:starts", 600)
    while payload.hold and not await ctx.redis.exists(f"probe:{payload.run}:open:{payload.hold}"):
        await asyncio.sleep(0.02)  # a gate the test opens: the job ends on a condition, not on machine speed
    await asyncio.sleep(payload.seconds)
    return ctx.worker_id


class GateIn(BaseModel):
    gate: str


@task(timeout_s=5)
async def gated(ctx: JobContext, payload: GateIn) -> str:
    """Fails for good until ``probe:gate:<gate>`` exists in Redis: a dead letter that a fix can replay."""
    if not await ctx.redis.exists(f"probe:gate:{payload.gate}"):
        raise PermanentError(f"gate {payload.gate} is closed")
    return "passed"


@task(timeout_s=5, priority=7)
async def urgent_add(ctx: JobContext, payload: AddIn) -> AddOut:
    """``add`` with a default priority of 7 (tests/unit/test_priority.py)."""
    return AddOut(total=payload.a + payload.b, try_number=ctx.try_number)


class OrderedIn(BaseModel):
    run: str
    tag: str
    seconds: float = 0.0


@task(timeout_s=30)
async def ordered(ctx: JobContext, payload: OrderedIn) -> None:
    """Records the order jobs start in (``order:<run>``, a list of tags), then sleeps ``seconds``."""
    await reply(ctx.redis.rpush(f"order:{payload.run}", payload.tag))
    if payload.seconds:
        await asyncio.sleep(payload.seconds)


@task(timeout_s=5, queue="emails")
async def emails_add(ctx: JobContext, payload: AddIn) -> AddOut:
    """``add`` on its own queue, "emails" (tests/unit/test_queue_plan.py)."""
    return AddOut(total=payload.a + payload.b, try_number=ctx.try_number)


class TenantIn(BaseModel):
    run: str
    tenant: str
    seconds: float = 0.0


@task(timeout_s=30, fair_by="tenant")
async def fair_ordered(ctx: JobContext, payload: TenantIn) -> None:
    """``ordered`` served round-robin by tenant: records the tenants in the order their jobs start."""
    await reply(ctx.redis.rpush(f"order:{payload.run}", payload.tenant))
    if payload.seconds:
        await asyncio.sleep(payload.seconds)
