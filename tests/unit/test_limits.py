"""Concurrency limits: per task in one worker, and per key across workers with expiring leases."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.harness import Harness
from worker import JobStatus, Limit
from worker.engine.limiter import DistributedLimiter, NoFreeSlot
from worker.errors import TaskDefinitionError
from worker.protocol.scripts import Scripts


async def test_second_job_for_a_busy_key_is_deferred_uncharged(harness: Harness) -> None:
    same_key = [await harness.client.enqueue("per_host", {"host": "a", "seconds": 0.05}) for _ in range(2)]
    other = await harness.client.enqueue("per_host", {"host": "b", "seconds": 0.05})
    assert await harness.run_due() == 3
    assert (await other.wait(timeout_s=1)).success  # another key is not held back
    infos = [await h.status() for h in same_key]
    assert sorted(i.status for i in infos) == [JobStatus.DEFERRED, JobStatus.SUCCEEDED]
    waiting, info = next((h, i) for h, i in zip(same_key, infos, strict=True) if i.status is JobStatus.DEFERRED)
    assert (info.tries, info.interruptions) == (0, 0)
    harness.clock.advance(harness.settings.slot_retry_s)
    await harness.run_due()
    result = await waiting.wait(timeout_s=1)
    assert (result.success, result.tries, result.interruptions) == (True, 1, 0)
    assert await harness.redis.exists("jobq:limit:host:a") == 0  # slots are given back


async def test_slot_is_given_back_when_the_try_fails(harness: Harness) -> None:
    limiter = DistributedLimiter(harness.redis, lease_s=5)
    limit = Limit("x", 1)
    with pytest.raises(RuntimeError):
        async with limiter.slot(limit, None, holder="h1"):
            raise RuntimeError("boom")
    async with limiter.slot(limit, None, holder="h2"):
        pass


async def test_full_limit_raises_no_free_slot(harness: Harness) -> None:
    limiter = DistributedLimiter(harness.redis, lease_s=5)
    limit = Limit("pair", 2)
    async with limiter.slot(limit, None, holder="h1"), limiter.slot(limit, None, holder="h2"):
        with pytest.raises(NoFreeSlot, match="limit 'pair' is full"):
            async with limiter.slot(limit, None, holder="h3"):
                pass


async def test_slot_of_a_crashed_holder_frees_itself_after_the_lease(harness: Harness) -> None:
    limit = Limit("lease", 1)
    # A holder that crashed: it took the slot with a 50 ms lease, then never renewed nor gave it back.
    await Scripts.of(harness.redis)["limit_acquire"](["jobq:limit:lease:all"], ["dead-worker", 50, 1])
    live = DistributedLimiter(harness.redis, lease_s=5)
    with pytest.raises(NoFreeSlot):
        async with live.slot(limit, None, holder="h2"):
            pass
    await asyncio.sleep(0.06)  # the lease runs out (Redis server time)
    async with live.slot(limit, None, holder="h2"):
        pass


async def test_lease_is_renewed_while_the_job_runs(harness: Harness) -> None:
    limiter = DistributedLimiter(harness.redis, lease_s=0.06)
    limit = Limit("renew", 1)
    async with limiter.slot(limit, None, holder="long"):
        await asyncio.sleep(0.15)  # well past one lease: renewals every 20 ms keep it
        other = DistributedLimiter(harness.redis, lease_s=0.06)
        with pytest.raises(NoFreeSlot):
            async with other.slot(limit, None, holder="intruder"):
                pass


def test_limits_are_validated() -> None:
    with pytest.raises(TaskDefinitionError, match="max_concurrent must be at least 1"):
        Limit("x", 0)
    with pytest.raises(TaskDefinitionError, match="contain no ':'"):
        Limit("a:b", 1)
