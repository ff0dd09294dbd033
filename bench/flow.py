"""Queues and flow control (issue 16), measured with real worker processes: priorities, strict and weighted
queues, fairness, jobs waiting for a slot, and a paused queue's idle cost. jobq only (arq has none of them).

Each figure comes from the order jobs started in: the ``mark`` and ``fair_mark`` tasks of bench/tasks.py push
their tag onto ``bench:order:<run>`` as they start.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import cast

import redis

from bench.harness import JOBQ, System, calls_delta, command_calls, fresh_queue, reset_redis, running_workers
from bench.measure import Context, Sample
from worker import Client, JobRequest, load_settings

WAIT_S = 300.0


def _client(ctx: Context, queue: str) -> Client:
    return Client(load_settings(redis_url=ctx.url, queue_name=queue, task_modules=["bench.tasks"]))


def _started(r: redis.Redis, run: str) -> list[str]:
    tags = cast("list[bytes]", r.lrange(f"bench:order:{run}", 0, -1))  # a sync client: a list, not an awaitable
    return [t.decode() for t in tags]


async def _until(r: redis.Redis, run: str, done: Callable[[list[str]], bool], what: str) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while not done(started := _started(r, run)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what} ({len(started)} jobs started)")
        await asyncio.sleep(0.02)
    return started


def _marks(
    run: str, tag: str, count: int, *, queue: str | None = None, seconds: float = 0.0, **options: object
) -> list[JobRequest]:
    payload = {"run": run, "tag": tag, "seconds": seconds}
    return [JobRequest("mark", payload, queue=queue, **options) for _ in range(count)]  # type: ignore[arg-type]


def _overtaking(ctx: Context, *, strict: bool) -> float:
    """Low jobs started after 20 high ones were enqueued behind 10,000 low ones, before the last high one started:
    high by priority on one queue, or (``strict``) high on the first queue of a worker's strict ``JOBQ_QUEUES``."""
    r = ctx.redis()
    reset_redis(r)
    queue, run = fresh_queue(JOBQ), uuid.uuid4().hex[:8]
    low_queue = queue + ":low" if strict else queue
    env = {"JOBQ_QUEUES": f"{queue},{low_queue}"} if strict else {}
    high_options: dict[str, object] = {} if strict else {"priority": 9}

    async def go() -> float:
        async with _client(ctx, queue) as client:
            await client.enqueue_many(_marks(run, "low", 10_000, queue=low_queue, seconds=0.002))
            before = len(await _until(r, run, lambda s: len(s) >= 50, "the low jobs to start"))
            await client.enqueue_many(_marks(run, "high", 20, queue=queue, seconds=0.002, **high_options))
            started = await _until(r, run, lambda s: s[before:].count("high") == 20, "the high jobs to start")
        after = started[before:]
        return float(after[: max(i for i, t in enumerate(after) if t == "high")].count("low"))

    with running_workers(JOBQ, ctx.url, queue, max_jobs=10, env=env) as workers:
        workers.wait_ready(r)
        figure = asyncio.run(go())
        workers.check_alive()
    return figure


def _weighted(ctx: Context, window_s: float) -> dict[str, float]:
    r = ctx.redis()
    reset_redis(r)
    base, run = fresh_queue(JOBQ), uuid.uuid4().hex[:8]
    weights = {base: 5, f"{base}:b": 3, f"{base}:c": 1}
    rate = 9 / 0.03  # 9 slots, 30 ms jobs
    backlog = {q: int(rate * window_s * w / 9 * 1.5) + 200 for q, w in weights.items()}

    async def fill() -> None:
        async with _client(ctx, base) as client:
            for q, n in backlog.items():
                await client.enqueue_many(_marks(run, q, n, queue=q, seconds=0.03))

    asyncio.run(fill())
    plan = ",".join(f"{q}={w}" for q, w in weights.items())
    with running_workers(JOBQ, ctx.url, base, max_jobs=9, env={"JOBQ_QUEUES": plan}) as workers:
        workers.wait_ready(r)
        time.sleep(1.0)
        first = len(_started(r, run))
        time.sleep(window_s)
        window = _started(r, run)[first:]
        workers.check_alive()
    counts = Counter(window)
    if any(counts[q] >= backlog[q] for q in weights):
        raise RuntimeError("a weighted queue ran dry during the window")
    shares = {q: counts[q] / len(window) for q in weights}
    return {
        "weighted_share_5": 100 * shares[base],
        "weighted_share_3": 100 * shares[f"{base}:b"],
        "weighted_share_1": 100 * shares[f"{base}:c"],
        "weighted_worst_pct": max(abs(shares[q] * 9 / w - 1) * 100 for q, w in weights.items()),
    }


def _fairness(ctx: Context, task: str) -> float:
    """With ``fair_mark``: A's jobs started while B's 20 did; with ``mark``: B's jobs started while 2,000 of A's did."""
    r = ctx.redis()
    reset_redis(r)
    queue, run = fresh_queue(JOBQ), uuid.uuid4().hex[:8]
    field = "tenant" if task == "fair_mark" else "tag"

    def jobs(tenant: str, count: int) -> list[JobRequest]:
        return [JobRequest(task, {"run": run, field: tenant, "seconds": 0.002}) for _ in range(count)]

    async def go() -> float:
        async with _client(ctx, queue) as client:
            await client.enqueue_many(jobs("A", 20_000))
            before = len(await _until(r, run, lambda s: len(s) >= 200, "A's jobs to start"))
            await client.enqueue_many(jobs("B", 20))
            started = await _until(
                r, run, lambda s: s[before:].count("B") == 20 or s[before:].count("A") >= 2_000, "B's jobs"
            )
        after = started[before:]
        if task != "fair_mark":
            return float(after.count("B"))
        return float(after[: max(i for i, t in enumerate(after) if t == "B")].count("A"))

    with running_workers(JOBQ, ctx.url, queue, count=2, max_jobs=10) as workers:
        workers.wait_ready(r)
        figure = asyncio.run(go())
        workers.check_alive()
    return figure


def _commands_per_job(ctx: Context, task: str) -> float:
    """Redis commands per job for 60 jobs of 0.1 s through one worker (the harness's own polls left out)."""
    r = ctx.redis()
    reset_redis(r)
    queue = fresh_queue(JOBQ)

    async def go() -> float:
        async with _client(ctx, queue) as client:
            before, polls = command_calls(r), 0
            handles = await client.enqueue_many([JobRequest(task, {"seconds": 0.1}) for _ in range(60)])
            while r.zcard(queue):
                polls += 1
                await asyncio.sleep(0.05)
            spent = sum(calls_delta(before, command_calls(r)).values()) - polls - 1  # the polls, the last ZCARD
            results = [await h.wait(timeout_s=30) for h in handles]
            if not all(res.success and res.tries == 1 for res in results):
                raise RuntimeError(f"{task}: a job failed or ran more than one try")
        return spent / 60

    with running_workers(JOBQ, ctx.url, queue, max_jobs=10) as workers:
        workers.wait_ready(r)
        figure = asyncio.run(go())
        workers.check_alive()
    return figure


def _paused_idle(ctx: Context, window_s: float) -> dict[str, float]:
    """Redis commands/s of one idle worker: on an empty queue, then on a paused queue holding 100 jobs."""
    r = ctx.redis()
    reset_redis(r)
    queue = fresh_queue(JOBQ)
    with running_workers(JOBQ, ctx.url, queue, max_jobs=10) as workers:
        workers.wait_ready(r)
        time.sleep(1.0)
        before = command_calls(r)
        time.sleep(window_s)
        idle = sum(calls_delta(before, command_calls(r)).values()) / window_s

        async def pause_and_fill() -> None:
            async with _client(ctx, queue) as client:
                await client.pause(by="bench")
                await client.enqueue_many(_marks("paused", "p", 100))

        asyncio.run(pause_and_fill())
        time.sleep(1.0)
        before = command_calls(r)
        time.sleep(window_s)
        paused = sum(calls_delta(before, command_calls(r)).values()) / window_s
        if r.llen("bench:order:paused"):
            raise RuntimeError("a job of a paused queue started")
        workers.check_alive()
    return {"idle_cmds_s": idle, "paused_cmds_s": paused}


def flow(ctx: Context, system: System) -> Sample:
    """Every flow-control figure, for jobq (the others have no such features: empty samples)."""
    if not system.is_jobq:
        return Sample({})
    quick = ctx.sizes.pickup_jobs < 100
    window_s = 5.0 if quick else 30.0
    values = {"priority_lows": _overtaking(ctx, strict=False), "strict_lows": _overtaking(ctx, strict=True)}
    values |= _weighted(ctx, window_s)
    values["fair_a_jobs"] = _fairness(ctx, "fair_mark")
    values["unfair_b_jobs"] = _fairness(ctx, "mark")
    values["capped_cmds"] = _commands_per_job(ctx, "capped_sleep")
    values["uncapped_cmds"] = _commands_per_job(ctx, "sleep")
    values["parked_ratio"] = values["capped_cmds"] / values["uncapped_cmds"]
    values |= _paused_idle(ctx, 3.0 if quick else 10.0)
    return Sample(values)
