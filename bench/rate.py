"""A fleet-wide rate limit (issue 16), measured with real worker processes: 50 starts/s on one key, 4 workers.

A backlog of 20 s of jobs (5 s with ``--quick``) of ``rated_mark`` (bench/tasks.py: ``RateLimit("bench",
per_s=50, burst=5)``) is enqueued at once to 4 worker processes; each start records its wall time. The same
backlog runs again under a keyed limit (``keyed_rated_mark``: the key from the payload, one key for the run).
Figures: the rate over the steady part (after the first burst), the most starts in any 1 s window (the bound
is per_s + burst), and Redis commands per job (``INFO commandstats``, Lua-internal calls included, the harness's
own polls left out) against the same number of ``unrated_mark`` jobs through the same workers. Runnable alone:
``python -m bench --only rate``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import cast

import redis

from bench.harness import JOBQ, System, calls_delta, command_calls, fresh_queue, reset_redis, running_workers
from bench.measure import Context, Sample
from bench.tasks import BENCH_RATE
from worker import Client, JobRequest, load_settings

WORKERS = 4
WAIT_S = 120.0


def most_in_a_window(times: list[float], window_s: float = 1.0) -> int:
    """The most starts in any window of ``window_s`` (windows beginning at a start hold the most)."""
    times, most, last = sorted(times), 0, 0
    for first, at in enumerate(times):
        while last < len(times) and times[last] < at + window_s:
            last += 1
        most = max(most, last - first)
    return most


def _batch(ctx: Context, r: redis.Redis, queue: str, task: str, jobs: int) -> tuple[list[float], dict[str, int]]:
    """Enqueue ``jobs`` of ``task`` at once and wait for their ends: their start times, and the commands spent."""
    run = uuid.uuid4().hex[:8]
    starts_key = f"bench:starts:{run}"

    async def go() -> tuple[list[float], dict[str, int]]:
        settings = load_settings(redis_url=ctx.url, queue_name=queue, task_modules=["bench.tasks"])
        async with Client(settings) as client:
            before, polls = command_calls(r), 0
            handles = await client.enqueue_many([JobRequest(task, {"run": run}) for _ in range(jobs)])
            deadline = time.monotonic() + WAIT_S
            while True:
                started, left = cast("int", r.llen(starts_key)), cast("int", r.zcard(queue))  # a sync client
                polls += 1
                if started >= jobs and not left:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{task}: {started} of {jobs} jobs started in {WAIT_S:.0f} s")
                await asyncio.sleep(0.05)
            delta = calls_delta(before, command_calls(r))
            for polled in ("llen", "zcard"):  # the harness's own polls
                delta[polled] = delta.get(polled, 0) - polls
            results = [await h.wait(timeout_s=30) for h in handles]
            if not all(res.success and res.tries == 1 for res in results):
                raise RuntimeError(f"{task}: a job failed or ran more than one try")
        starts = [float(t) for t in cast("list[bytes]", r.lrange(starts_key, 0, -1))]
        if len(starts) != jobs:
            raise RuntimeError(f"{task}: {len(starts)} starts recorded for {jobs} jobs")
        return starts, delta

    return asyncio.run(go())


def _trickle(
    ctx: Context, r: redis.Redis, queue: str, task: str, jobs: int, per_s: float
) -> tuple[list[float], dict[str, int]]:
    """Enqueue ``jobs`` of ``task`` one at a time, ``per_s`` a second, and wait for their ends: their start times
    and the commands spent."""
    run = uuid.uuid4().hex[:8]
    starts_key = f"bench:starts:{run}"

    async def go() -> tuple[list[float], dict[str, int]]:
        settings = load_settings(redis_url=ctx.url, queue_name=queue, task_modules=["bench.tasks"])
        async with Client(settings) as client:
            await client.enqueue(task, {"run": "warm-up"})  # the producer's connection open, not counted
            before, polls = command_calls(r), 0
            begin = time.monotonic()
            for i in range(jobs):
                await asyncio.sleep(max(0.0, begin + i / per_s - time.monotonic()))
                await client.enqueue(task, {"run": run})
            deadline = time.monotonic() + WAIT_S
            while cast("int", r.llen(starts_key)) < jobs or cast("int", r.zcard(queue)):  # a sync client
                polls += 1
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{task}: not all {jobs} trickled jobs ran in {WAIT_S:.0f} s")
                await asyncio.sleep(0.05)
            delta = calls_delta(before, command_calls(r))
            for polled in ("llen", "zcard"):
                delta[polled] = delta.get(polled, 0) - polls - 1
        return [float(t) for t in cast("list[bytes]", r.lrange(starts_key, 0, -1))], delta

    return asyncio.run(go())


def rate(ctx: Context, system: System) -> Sample:
    """The rate-limit figures, for jobq (the others have no rate limits: an empty sample)."""
    if not system.is_jobq:
        return Sample({})
    seconds = 5 if ctx.sizes.pickup_jobs < 100 else 20
    jobs = round(BENCH_RATE.per_s * seconds)
    r = ctx.redis()
    reset_redis(r)
    queue = fresh_queue(JOBQ)
    with running_workers(JOBQ, ctx.url, queue, count=WORKERS, max_jobs=10) as workers:
        workers.wait_ready(r)
        _, unlimited = _batch(ctx, r, queue, "unrated_mark", jobs)
        starts, limited = _batch(ctx, r, queue, "rated_mark", jobs)
        keyed_starts, keyed = _batch(ctx, r, queue, "keyed_rated_mark", jobs)
        # Jobs arriving one by one 20 % faster than the rate: each waits under JOBQ_RATE_HOLD_S, held, not parked.
        trickled = jobs // 4
        _, trickle_unlimited = _trickle(ctx, r, queue, "unrated_mark", trickled, 1.2 * BENCH_RATE.per_s)
        trickle_starts, trickle_limited = _trickle(ctx, r, queue, "rated_mark", trickled, 1.2 * BENCH_RATE.per_s)
        workers.check_alive()
    trickle_limited_per_job = sum(trickle_limited.values()) / trickled
    trickle_unlimited_per_job = sum(trickle_unlimited.values()) / trickled
    starts.sort()
    steady = starts[BENCH_RATE.burst :]
    limited_per_job, unlimited_per_job = sum(limited.values()) / jobs, sum(unlimited.values()) / jobs
    return Sample(
        {
            "rate_per_s": (len(steady) - 1) / (steady[-1] - steady[0]),
            "max_in_1s": float(most_in_a_window(starts)),
            "bound_in_1s": BENCH_RATE.per_s + BENCH_RATE.burst,
            "limited_cmds": limited_per_job,
            "unlimited_cmds": unlimited_per_job,
            "limited_ratio": limited_per_job / unlimited_per_job,
            "keyed_ratio": sum(keyed.values()) / jobs / unlimited_per_job,
            "keyed_max_in_1s": float(most_in_a_window(keyed_starts)),
            "limited_evalsha": limited.get("evalsha", 0) / jobs,
            "unlimited_evalsha": unlimited.get("evalsha", 0) / jobs,
            "trickle_limited_cmds": trickle_limited_per_job,
            "trickle_unlimited_cmds": trickle_unlimited_per_job,
            "trickle_ratio": trickle_limited_per_job / trickle_unlimited_per_job,
            "trickle_max_in_1s": float(most_in_a_window(trickle_starts)),
        },
        detail={"breakdown_limited": dict(sorted(limited.items(), key=lambda kv: -kv[1]))},
    )
