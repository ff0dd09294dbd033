"""The measurements: each runs one repetition for one system on a fresh queue and returns a :class:`Sample`.

Every measurement starts from an empty database and leaves no worker running.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.harness import System, calls_delta, command_calls, fresh_queue, reset_redis, running_workers
from bench.producers import Finished, Producer

IO_MAX_JOBS = 200
IO_SLEEP_S = 0.1
PICKUP_GAP_S = 0.02
IDLE_WORKERS = 4
IDLE_SETTLE_S = 1.0
IDLE_WINDOW_S = 5.0  # one jobq heartbeat interval (JOBQ_HEALTH_INTERVAL_S default): each worker beats about once
BACKGROUND_WINDOW_S = 1.0


@dataclass(frozen=True)
class Sizes:
    """Jobs per measurement. Slow default arq gets fewer jobs so the run stays short (rates are per second)."""

    enqueue: dict[str, int]
    batch: dict[str, int]
    drain: dict[str, int]
    io_jobs: int
    pickup_jobs: int
    commands: dict[str, int]


FULL = Sizes(
    enqueue={"jobq": 10_000, "arq": 5_000, "arq_tuned": 5_000, "saq": 10_000},
    batch={"jobq": 50_000, "arq": 5_000, "arq_tuned": 5_000},
    drain={"jobq": 30_000, "arq": 800, "arq_tuned": 5_000},
    io_jobs=2_000,
    pickup_jobs=200,
    commands={"jobq": 1_000, "arq": 500, "arq_tuned": 1_000},
)
QUICK = Sizes(
    enqueue={"jobq": 1_000, "arq": 1_000, "arq_tuned": 1_000, "saq": 1_000},
    batch={"jobq": 10_000, "arq": 1_000, "arq_tuned": 1_000},
    drain={"jobq": 2_000, "arq": 200, "arq_tuned": 2_000},
    io_jobs=2_000,
    pickup_jobs=50,
    commands={"jobq": 200, "arq": 100, "arq_tuned": 200},
)


@dataclass
class Sample:
    """One repetition's figures (name -> value) and details for the report (e.g. commands by name)."""

    values: dict[str, float]
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What a measurement needs: the server and the sizes."""

    url: str
    sizes: Sizes

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


Measurement = Callable[[Context, System], Sample]


def _run(coro: Coroutine[Any, Any, Sample], system: System) -> Sample:
    if system.key == "arq_tuned":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def _on_one_worker(
    ctx: Context, system: System, queue: str, producer: Callable[[], Coroutine[Any, Any, Sample]]
) -> Sample:
    """Run ``producer()`` (the producer side) against one ready worker process of ``system`` on ``queue``."""
    with running_workers(system, ctx.url, queue) as workers:
        workers.wait_ready(ctx.redis())
        sample = _run(producer(), system)
        workers.check_alive()
    return sample


def window_s(finished: list[Finished]) -> float:
    """Seconds from the first job's start to the last job's finish (worker start-up excluded)."""
    return max(f.finish_s for f in finished) - min(f.start_s for f in finished)


def steady_rate(finished: list[Finished], ready_s: list[float]) -> float:
    """Jobs/s once every worker process is up: from the later of the first job start and the last worker's
    ready time, to the last finish, counting the jobs that started in that span."""
    begin = max(min(f.start_s for f in finished), *ready_s)
    counted = sum(1 for f in finished if f.start_s >= begin)
    return counted / (max(f.finish_s for f in finished) - begin)


# --- enqueue -------------------------------------------------------------------------------------


def enqueue_single(ctx: Context, system: System) -> Sample:
    """Jobs/s enqueued with one await per job, no worker running."""
    n = ctx.sizes.enqueue[system.key]

    async def go() -> Sample:
        async with Producer(system, ctx.url, fresh_queue(system)) as p:
            await p.enqueue("noop")  # connect first
            start = time.perf_counter()
            for _ in range(n):
                await p.enqueue("noop")
            return Sample({"jobs_s": n / (time.perf_counter() - start)})

    reset_redis(ctx.redis())
    return _run(go(), system)


def enqueue_batch(ctx: Context, system: System) -> Sample:
    """Jobs/s of jobq's ``enqueue_many`` (validation included); arq: gather of enqueue_job, 100 at a time."""
    n = ctx.sizes.batch[system.key]

    async def go() -> Sample:
        async with Producer(system, ctx.url, fresh_queue(system)) as p:
            await p.enqueue("noop")
            start = time.perf_counter()
            await p.enqueue_batch("noop", n)
            return Sample({"jobs_s": n / (time.perf_counter() - start)})

    reset_redis(ctx.redis())
    return _run(go(), system)


# --- drain and I/O-bound -------------------------------------------------------------------------


@dataclass(frozen=True)
class PrefilledRun:
    """A run on a pre-filled queue: the finished jobs, each worker's ready time and peak RSS, and the Redis
    commands per job of the whole run (batch enqueue, worker start-up and every job's run)."""

    finished: list[Finished]
    ready_s: list[float]
    rss_mb: list[float]
    commands_per_job: float


def _prefilled_run(
    ctx: Context, system: System, *, task: str, n: int, processes: int, max_jobs: int | None = None, **kwargs: Any
) -> PrefilledRun:
    """Fill a queue with ``n`` jobs, start the workers, wait for every result."""
    r = ctx.redis()
    reset_redis(r)
    queue = fresh_queue(system)
    before = command_calls(r)

    async def fill() -> list[str]:
        async with Producer(system, ctx.url, queue) as p:
            return await p.enqueue_batch(task, n, **kwargs)

    async def collect(ids: list[str]) -> tuple[list[Finished], int]:
        async with Producer(system, ctx.url, queue) as p:
            await p.wait_done(ids)
            calls = sum(calls_delta(before, command_calls(r)).values()) - p.commands_sent
            return await p.results(ids), calls

    ids = asyncio.run(fill())
    with running_workers(system, ctx.url, queue, count=processes, max_jobs=max_jobs) as workers:
        finished, calls = asyncio.run(collect(ids))
        workers.check_alive()
        rss = workers.peak_rss_mb()
        ready = workers.ready_times(r)
    return PrefilledRun(finished, ready, rss, calls / n)


def drain(processes: int) -> Measurement:
    """No-op jobs/s with ``processes`` worker processes on a pre-filled queue, first start to last finish."""

    def measure(ctx: Context, system: System) -> Sample:
        n = ctx.sizes.drain[system.key]
        run = _prefilled_run(ctx, system, task="noop", n=n, processes=processes)
        return Sample(
            {
                "jobs_s": steady_rate(run.finished, run.ready_s),
                "rss_mb": max(run.rss_mb),
                "cmds_per_job": run.commands_per_job,
            },
            {"all_jobs_s": n / window_s(run.finished)},
        )

    measure.__name__ = f"drain_{processes}"
    return measure


def io_bound(ctx: Context, system: System) -> Sample:
    """Wall time of 2,000 ``asyncio.sleep(0.1)`` jobs at concurrency 200 (ideal 1 s), first start to last finish."""
    n = ctx.sizes.io_jobs
    run = _prefilled_run(ctx, system, task="sleep", n=n, processes=1, max_jobs=IO_MAX_JOBS, seconds=IO_SLEEP_S)
    wall = window_s(run.finished)
    ideal = n * IO_SLEEP_S / IO_MAX_JOBS
    return Sample({"wall_s": wall, "efficiency_pct": 100 * ideal / wall})


# --- one idle worker: pickup latency and commands per job ----------------------------------------


async def _warm_up(p: Producer) -> None:
    await p.wait_done([await p.enqueue("stamp")], timeout_s=30)
    await asyncio.sleep(0.5)  # let the worker go idle again


def pickup(ctx: Context, system: System) -> Sample:
    """Enqueue-to-start latency on an idle worker, jobs 20 ms apart: p50/p95/p99 in ms."""
    n = ctx.sizes.pickup_jobs
    r = ctx.redis()
    reset_redis(r)
    queue = fresh_queue(system)

    async def go() -> Sample:
        async with Producer(system, ctx.url, queue) as p:
            await _warm_up(p)
            sent: list[tuple[str, float]] = []
            begin = time.monotonic()
            for i in range(n):
                await asyncio.sleep(max(0.0, begin + i * PICKUP_GAP_S - time.monotonic()))
                t0 = time.time()
                sent.append((await p.enqueue("stamp"), t0))
            finished = await p.wait_finished([job_id for job_id, _ in sent])
        lat_ms = [(f.value - t0) * 1000 for f, (_, t0) in zip(finished, sent, strict=True)]
        q = statistics.quantiles(lat_ms, n=100, method="inclusive")
        return Sample({"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98]}, {"max_ms": max(lat_ms)})

    return _on_one_worker(ctx, system, queue, go)


def commands_per_job(ctx: Context, system: System) -> Sample:
    """Redis commands (INFO commandstats, Lua-internal ones included) per job: enqueue one at a time + run."""
    n = ctx.sizes.commands[system.key]
    r = ctx.redis()
    reset_redis(r)
    queue = fresh_queue(system)

    async def go() -> Sample:
        async with Producer(system, ctx.url, queue) as p:
            await _warm_up(p)
            quiet = command_calls(r)
            await asyncio.sleep(BACKGROUND_WINDOW_S)
            before = command_calls(r)
            background_s = sum(calls_delta(quiet, before).values()) / BACKGROUND_WINDOW_S
            sent_before = p.commands_sent
            start = time.monotonic()
            ids = [await p.enqueue("noop") for _ in range(n)]
            await p.wait_done(ids)
            delta = calls_delta(before, command_calls(r))
            elapsed = time.monotonic() - start
            # The waiting loop's own EXISTS calls are not the queue's.
            delta["exists"] = delta.get("exists", 0) - (p.commands_sent - sent_before)
            delta = {k: v for k, v in delta.items() if v}
        per_job = {k: v / n for k, v in sorted(delta.items(), key=lambda kv: -kv[1])}
        total = sum(per_job.values())
        net = total - background_s * elapsed / n
        return Sample({"per_job": total}, {"breakdown": per_job, "net_of_idle": net, "idle_per_s": background_s})

    return _on_one_worker(ctx, system, queue, go)


def idle_load(ctx: Context, system: System) -> Sample:
    """Redis commands/s (all clients) while 4 idle worker processes wait for jobs."""
    r = ctx.redis()
    reset_redis(r)
    with running_workers(system, ctx.url, fresh_queue(system), count=IDLE_WORKERS) as workers:
        workers.wait_ready(r)
        time.sleep(IDLE_SETTLE_S)
        before = command_calls(r)
        start = time.monotonic()
        time.sleep(IDLE_WINDOW_S)
        delta = calls_delta(before, command_calls(r))
        elapsed = time.monotonic() - start
        workers.check_alive()
    per_s = {k: v / elapsed for k, v in sorted(delta.items(), key=lambda kv: -kv[1])}
    return Sample({"cmds_s": sum(per_s.values())}, {"breakdown": per_s})
