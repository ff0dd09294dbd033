"""``python -m bench``: measure jobq on an embedded redis-server and write bench/RESULTS.md.

Each figure is the median of REPEATS runs. Figures depend on the machine; the table records it.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from worker import Client, JobRequest, load_settings
from worker.embedded import EmbeddedRedis
from worker.settings import JobqSettings

REPEATS = 3
ENQUEUE_JOBS = 5_000
BATCH_JOBS = 50_000
DRAIN_JOBS = 5_000
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"


def fresh_settings(url: str) -> JobqSettings:
    return load_settings(redis_url=url, queue_name=f"bench:{uuid.uuid4().hex[:8]}", task_modules=["tasks"])


async def enqueue_one_by_one(url: str) -> float:
    async with Client(fresh_settings(url)) as client:
        start = time.perf_counter()
        for i in range(ENQUEUE_JOBS):
            await client.enqueue("ping", {"message": str(i)})
        return ENQUEUE_JOBS / (time.perf_counter() - start)


async def enqueue_batch(url: str) -> float:
    async with Client(fresh_settings(url)) as client:
        requests = [JobRequest("ping", {"message": str(i)}) for i in range(BATCH_JOBS)]
        start = time.perf_counter()
        await client.enqueue_many(requests)
        return BATCH_JOBS / (time.perf_counter() - start)


def drain(url: str, processes: int = 1) -> float:
    """Start worker processes, then time how fast they empty a queue of DRAIN_JOBS no-op jobs."""
    settings = fresh_settings(url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")},
        "JOBQ_REDIS_URL": url,
        "JOBQ_QUEUE_NAME": settings.queue_name,
        "JOBQ_TASK_MODULES": "tasks",
        "JOBQ_LOG_LEVEL": "WARNING",
        "JOBQ_MAX_JOBS": "100",
        "JOBQ_POLL_DELAY_S": "0.01",
    }
    workers = [
        subprocess.Popen([sys.executable, "-m", "worker", "worker"], env=env, cwd=ROOT) for _ in range(processes)
    ]
    try:
        sync = redis.Redis.from_url(url)
        while not sync.exists(f"{settings.queue_name}:health-check"):
            time.sleep(0.01)
        return asyncio.run(_time_drain(settings))
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)


async def _time_drain(settings: JobqSettings) -> float:
    async with Client(settings) as client:
        await client.enqueue_many([JobRequest("ping", {}) for _ in range(DRAIN_JOBS)])
        start = time.perf_counter()
        # A finished job leaves the queue in the same transaction that stores its result.
        while await client.redis.zcard(settings.queue_name):  # noqa: ASYNC110 - polling Redis, not a local flag
            await asyncio.sleep(0.005)
        return DRAIN_JOBS / (time.perf_counter() - start)


def median_of(fn: Callable[[str], float], url: str) -> float:
    runs: list[float] = []
    for i in range(REPEATS):
        runs.append(fn(url))
        print(f"  run {i + 1}/{REPEATS}: {runs[-1]:,.0f}/s", flush=True)
    return statistics.median(runs)


def main() -> None:
    rows = []
    with EmbeddedRedis.start("redis-server") as server:
        for label, fn in [
            (f"enqueue, one await per job ({ENQUEUE_JOBS:,} jobs)", lambda u: asyncio.run(enqueue_one_by_one(u))),
            (f"enqueue_many ({BATCH_JOBS:,} jobs)", lambda u: asyncio.run(enqueue_batch(u))),
            (f"no-op drain, 1 worker process ({DRAIN_JOBS:,} jobs)", drain),
        ]:
            print(f"{label}:", flush=True)
            rows.append((label, median_of(fn, server.url)))
    table = ["| measurement | jobs/s (median of 3) |", "|---|---|"]
    table += [f"| {label} | {value:,.0f} |" for label, value in rows]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    text = f"# jobq benchmarks\n\nMachine: {machine}; embedded redis-server on loopback.\n\n" + "\n".join(table)
    RESULTS.write_text(text + "\n")
    print("\n" + "\n".join(table) + f"\n\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
