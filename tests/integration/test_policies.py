"""Execution policies against real worker processes: dead-letter atomicity, the fleet-wide limit,
abort of a running job, and retry timing."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
import uuid

import pytest

from tests.harness import reply
from tests.integration.harness import StartWorker
from worker import DeadLetterStore, JobRequest, JobStatus, Outcome
from worker.client.producer import Client
from worker.settings import JobqSettings


async def snapshot(client: Client, queue: str, ids: list[str]) -> list[tuple[bool, bool]]:
    """For each id, (in the queue, in the dead letters), read atomically."""
    async with client.redis.pipeline(transaction=True) as pipe:
        pipe.zmscore(queue, ids)
        pipe.hmget(f"jobq:dlq:{queue}", ids)
        scores, entries = await pipe.execute()
    return [(s is not None, e is not None) for s, e in zip(scores, entries, strict=True)]


async def test_dead_lettering_never_loses_or_duplicates_a_job_even_when_a_worker_is_killed(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    env = {"JOBQ_TASK_MODULES": "tests.short_tasks", "JOBQ_MAX_JOBS": "5", "JOBQ_LEASE_TTL_S": "1"}
    s = JobqSettings(redis_url=settings.redis_url, queue_name=settings.queue_name, task_modules=["tests.short_tasks"])
    async with Client(s) as client:
        handles = await client.enqueue_many([JobRequest("doomed", {"n": i}) for i in range(300)])
        ids = [h.job_id for h in handles]
        victim = start_worker(**env)
        start_worker(**env)
        violations: list[tuple[str, tuple[bool, bool]]] = []
        killed = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = await snapshot(client, s.queue_name, ids)
            violations += [(i, st) for i, st in zip(ids, states, strict=True) if st[0] == st[1]]
            dead = sum(dl for _, dl in states)
            if not killed and dead >= 60:
                victim.signal(signal.SIGKILL)  # mid-burst: some of its jobs are being dead-lettered
                killed = True
            if dead == len(ids):
                break
            await asyncio.sleep(0.002)
        assert killed
        assert violations == []  # never in both places, never in neither
        store = DeadLetterStore(client.redis, s.queue_name, job_expires_s=s.job_expires_s)
        assert await store.count() == 300
        assert await reply(client.redis.hlen(f"jobq:dlq:{s.queue_name}")) == 300
        assert await client.redis.zcard(s.queue_name) == 0


async def test_fleet_wide_limit_holds_across_three_worker_processes(
    settings: JobqSettings, client: Client, start_worker: StartWorker
) -> None:
    for _ in range(3):
        start_worker(JOBQ_MAX_JOBS="20", JOBQ_SLOT_RETRY_S="0.05")
    run = uuid.uuid4().hex[:8]
    hosts = ["a", "b", "c", "d"]
    handles = await client.enqueue_many(
        [JobRequest("fleet_fetch", {"run": run, "host": hosts[i % 4], "seconds": 0.03}) for i in range(240)]
    )
    results = [await h.wait(timeout_s=60) for h in handles]
    assert all(r.success for r in results)
    assert {r.tries for r in results} == {1}  # waiting for a slot is never charged
    peaks = [int(await client.redis.get(f"probe:{run}:{host}:max")) for host in hosts]
    assert max(peaks) <= 2  # the limit: 2 per host across the fleet
    assert max(peaks) == 2  # ...and the fleet really did run jobs side by side


async def test_abort_stops_a_running_job_within_about_a_second(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    handle = await client.enqueue("progressing", {"seconds": 30})
    for _ in range(500):
        if (await handle.status()).status is JobStatus.IN_PROGRESS:
            break
        await asyncio.sleep(0.01)
    started = time.monotonic()
    assert await handle.abort(wait_s=5) is JobStatus.ABORTED
    assert time.monotonic() - started < 1.5  # JOBQ_ABORT_CHECK_S is 0.5 s
    await asyncio.sleep(0.3)
    info = await handle.status()
    assert (info.status, info.tries) == (JobStatus.ABORTED, 1)
    assert await client.redis.zscore(client.settings.queue_name, handle.job_id) is None  # not retried


async def test_retries_happen_at_the_backoff_times(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    run = uuid.uuid4().hex[:8]
    handle = await client.enqueue("timed_flaky", {"run": run, "failures": 2})
    result = await handle.wait(timeout_s=15)
    assert (result.success, result.tries, result.outcome) == (True, 3, Outcome.SUCCEEDED)
    stamps = [float(t) for t in await reply(client.redis.lrange(f"probe:{run}:tries", 0, -1))]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # No jitter, base 0.4 s, factor 2: 0.4 s then 0.8 s. Tolerance: poll delay (0.01 s) plus scheduling.
    for gap, expected in zip(gaps, [0.4, 0.8], strict=True):
        assert expected <= gap <= expected + 0.25, gaps


@pytest.mark.parametrize("signum", [signal.SIGTERM])
async def test_shutdown_returns_the_running_job_uncharged(
    client: Client, start_worker: StartWorker, signum: int
) -> None:
    first = start_worker(JOBQ_SHUTDOWN_GRACE_S="0")  # no grace: running jobs go straight back
    handle = await client.enqueue("progressing", {"seconds": 1})
    for _ in range(500):
        if (await handle.status()).status is JobStatus.IN_PROGRESS:
            break
        await asyncio.sleep(0.01)
    first.signal(signum)
    assert first.wait(timeout=10) == 0
    info = await handle.status()
    assert (info.status, info.tries, info.interruptions) == (JobStatus.QUEUED, 0, 1)
    start_worker()
    result = await handle.wait(timeout_s=10)
    assert (result.success, result.tries, result.interruptions) == (True, 1, 1)
