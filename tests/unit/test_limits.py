"""Concurrency limits: per task in one worker, and per key across workers with expiring leases."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.unit.harness import Harness
from worker import JobStatus, Limit
from worker.engine.limiter import DistributedLimiter, NoFreeSlot
from worker.errors import TaskDefinitionError
from worker.protocol.scripts import Scripts, include_source
from worker.protocol.waiting import WAITING_BASE


async def test_a_second_job_for_a_busy_key_waits_uncharged_and_runs_when_the_slot_frees(harness: Harness) -> None:
    same_key = [await harness.client.enqueue("per_host", {"host": "a", "seconds": 0.2}) for _ in range(2)]
    other = await harness.client.enqueue("per_host", {"host": "b", "seconds": 0.05})
    assert await harness.run_due() == 3
    assert (await other.wait(timeout_s=1)).success  # another key is not held back
    infos = [await h.status() for h in same_key]
    # The one that waited was put back by the slot the other gave back: due again, never charged a try.
    assert sorted(i.status for i in infos) == [JobStatus.QUEUED, JobStatus.SUCCEEDED]
    waiting, info = next((h, i) for h, i in zip(same_key, infos, strict=True) if i.status is JobStatus.QUEUED)
    assert (info.tries, info.interruptions) == (0, 0)
    assert await harness.redis.exists("jobq:gates:arq:queue") == 0
    await harness.run_due()
    result = await waiting.wait(timeout_s=1)
    assert (result.success, result.tries, result.interruptions) == (True, 1, 0)
    assert await harness.redis.exists("jobq:limit:host:a") == 0  # slots are given back


async def test_a_job_parked_on_a_limit_whose_holder_crashed_comes_back_at_the_gates_recheck(harness: Harness) -> None:
    # A holder that crashed took host "a"'s slot and never gives it back (its lease outlives this test).
    await Scripts.of(harness.redis)["limit_acquire"](["jobq:limit:host:a"], ["dead-worker", 60_000, 1])
    job = await harness.client.enqueue("per_host", {"host": "a", "seconds": 0})
    assert await harness.run_due() == 1
    assert (await job.status()).status is JobStatus.WAITING
    assert await harness.run_due() == 0  # nothing re-claims it in a loop
    await harness.redis.delete("jobq:limit:host:a")  # the dead holder's lease runs out
    harness.clock.advance(harness.settings.slot_retry_s)
    assert await harness.run_due() == 1  # the gate's re-check put it back, and it ran
    result = await job.wait(timeout_s=1)
    assert (result.success, result.tries) == (True, 1)


async def test_slot_is_given_back_when_the_try_fails(harness: Harness) -> None:
    limiter = DistributedLimiter(harness.redis, lease_s=5)
    limit = Limit("x", 1)
    with pytest.raises(RuntimeError):
        async with limiter.slot(limit, None, "h1", "q"):
            raise RuntimeError("boom")
    async with limiter.slot(limit, None, "h2", "q"):
        pass


async def test_full_limit_raises_no_free_slot(harness: Harness) -> None:
    limiter = DistributedLimiter(harness.redis, lease_s=5)
    limit = Limit("pair", 2)
    async with limiter.slot(limit, None, "h1", "q"), limiter.slot(limit, None, "h2", "q"):
        with pytest.raises(NoFreeSlot, match="limit 'pair' is full"):
            async with limiter.slot(limit, None, "h3", "q"):
                pass


async def test_slot_of_a_crashed_holder_frees_itself_after_the_lease(harness: Harness) -> None:
    limit = Limit("lease", 1)
    # A holder that crashed: it took the slot with a 50 ms lease, then never renewed nor gave it back.
    await Scripts.of(harness.redis)["limit_acquire"](["jobq:limit:lease:all"], ["dead-worker", 50, 1])
    live = DistributedLimiter(harness.redis, lease_s=5)
    with pytest.raises(NoFreeSlot):
        async with live.slot(limit, None, "h2", "q"):
            pass
    await asyncio.sleep(0.06)  # the lease runs out (Redis server time)
    async with live.slot(limit, None, "h2", "q"):
        pass


async def test_lease_is_renewed_while_the_job_runs(harness: Harness) -> None:
    limiter = DistributedLimiter(harness.redis, lease_s=0.06)
    limit = Limit("renew", 1)
    async with limiter.slot(limit, None, "long", "q"):
        await asyncio.sleep(0.15)  # well past one lease: renewals every 20 ms keep it
        other = DistributedLimiter(harness.redis, lease_s=0.06)
        with pytest.raises(NoFreeSlot):
            async with other.slot(limit, None, "intruder", "q"):
                pass


def test_limits_are_validated() -> None:
    with pytest.raises(TaskDefinitionError, match="max_concurrent must be at least 1"):
        Limit("x", 0)
    with pytest.raises(TaskDefinitionError, match="contain no ':'"):
        Limit("a:b", 1)


def test_the_waiting_base_is_the_same_in_python_and_lua() -> None:
    lua = re.search(r"local WAITING_BASE = (\d+)", include_source("waiting"))
    assert lua is not None
    assert int(lua.group(1)) == WAITING_BASE == 2**52
