"""Leases and fencing: a stale worker cannot record an outcome; lost leases stop their try."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.unit.harness import Harness
from worker import JobStatus, Outcome
from worker.engine.finish_batch import FinishBatcher
from worker.engine.leases import Leases
from worker.engine.try_handle import TryHandle
from worker.protocol.scripts import Scripts


async def test_claim_sets_a_fenced_lease_with_the_configured_ttl(make_harness: object) -> None:
    h = make_harness(lease_ttl_s=7)  # type: ignore[operator]
    await h.client.enqueue("add", {"a": 1, "b": 1}, job_id="l1")
    claims = await h.worker.leases.claim(h.clock.ms(), 10, 100)
    assert [c.job_id for c in claims] == ["l1"]
    assert await h.redis.get("arq:in-progress:l1") == claims[0].token.encode()
    assert claims[0].token.startswith(h.worker.state.worker_id + ":")
    assert 6_000 < await h.redis.pttl("arq:in-progress:l1") <= 7_000
    again = await h.worker.leases.claim(h.clock.ms(), 10, 100)
    assert again == []  # a held job is not claimed twice


async def test_tokens_are_unique_across_workers(harness: Harness) -> None:
    other = Leases(harness.redis, "arq:queue", "other-host:1", 30)
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="t1")
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="t2")
    mine = await harness.worker.leases.claim(harness.clock.ms(), 1, 100)
    theirs = await other.claim(harness.clock.ms(), 1, 100)
    assert {mine[0].job_id, theirs[0].job_id} == {"t1", "t2"}
    assert mine[0].token != theirs[0].token


async def test_stale_worker_cannot_record_over_the_rerun(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="stale")
    claim = (await harness.worker.leases.claim(harness.clock.ms(), 1, 100))[0]
    await harness.redis.set("arq:in-progress:stale", "other-worker:999")  # lease expired and re-claimed
    with caplog.at_level(logging.INFO, logger="jobq.job"):
        outcome = await harness.worker.executor.run(TryHandle(claim))
    assert outcome is Outcome.LEASE_LOST
    assert await harness.redis.exists("arq:result:stale") == 0  # nothing written by the stale worker
    assert await harness.redis.get("arq:in-progress:stale") == b"other-worker:999"  # the re-run's lease stands
    assert (await handle.status()).status is JobStatus.IN_PROGRESS
    assert "lease_lost" in caplog.text


async def test_lease_lost_mid_try_records_nothing(harness: Harness) -> None:
    handle = await harness.client.enqueue("progressing", {"seconds": 0.2}, job_id="mid")
    claim = (await harness.worker.leases.claim(harness.clock.ms(), 1, 100))[0]
    running = asyncio.create_task(harness.worker.executor.run(TryHandle(claim)))
    await asyncio.sleep(0.05)
    await harness.redis.set("arq:in-progress:mid", "thief:1")
    assert await running is Outcome.LEASE_LOST
    assert await harness.redis.exists("arq:result:mid") == 0
    assert (await handle.status()).status is JobStatus.IN_PROGRESS  # the other worker's try


async def test_renewal_extends_held_leases_and_reports_lost_ones(make_harness: object) -> None:
    h = make_harness(lease_ttl_s=5)  # type: ignore[operator]
    for job_id in ("kept", "taken"):
        await h.client.enqueue("add", {"a": 1, "b": 1}, job_id=job_id)
    await h.worker.leases.claim(h.clock.ms(), 10, 100)
    await h.redis.pexpire("arq:in-progress:kept", 100)
    await h.redis.set("arq:in-progress:taken", "thief:1")
    lost: list[str] = []
    await h.worker.leases.renew(lost.append)
    assert lost == ["taken"]
    assert await h.redis.pttl("arq:in-progress:kept") > 4_000
    assert set(h.worker.leases.held) == {"kept"}


async def test_lost_lease_cancels_the_running_try(harness: Harness) -> None:
    await harness.client.enqueue("progressing", {"seconds": 5}, job_id="cancel-me")
    await harness.worker.run_cycle()
    await asyncio.sleep(0.02)
    await harness.redis.set("arq:in-progress:cancel-me", "thief:1")
    await harness.worker.renew_leases()
    task = harness.worker.tasks["cancel-me"]
    await asyncio.wait({task}, timeout=1)
    assert task.done()
    assert await harness.redis.exists("arq:result:cancel-me") == 0


async def test_killed_workers_job_is_claimable_once_its_lease_runs_out(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="orphan")
    dead = Leases(harness.redis, "arq:queue", "dead-host:1", lease_ttl_s=0.05)
    await dead.claim(harness.clock.ms(), 1, 100)  # ...and the worker is killed: no renewals
    assert await harness.run_due() == 0
    await asyncio.sleep(0.06)  # the lease runs out (Redis time)
    assert await harness.run_due() == 1
    result = await harness.client.job("orphan").wait(timeout_s=1)
    # The dead worker's claim started its try (claim and start are one step): that try was cut short.
    assert (result.success, result.tries, result.interruptions) == (True, 1, 1)


async def test_a_batch_of_finishes_is_one_call_and_fenced_per_job(harness: Harness) -> None:
    for job_id in ("mine", "stolen"):
        await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id=job_id)
    claims = {c.job_id: c for c in await harness.worker.leases.claim(harness.clock.ms(), 10, 100)}
    await harness.redis.set("arq:in-progress:stolen", "thief:1")  # its lease passed to another worker
    batcher = FinishBatcher(harness.redis, harness.settings.queue_name)
    script = Scripts.of(harness.redis)["finish_many"]
    before = script.calls
    answers = await asyncio.gather(
        *(batcher.finish(job_id, claims[job_id].token, b"result", 60_000) for job_id in ("mine", "stolen"))
    )
    assert (answers, script.calls - before) == ([True, False], 1)
    assert await harness.redis.get("arq:result:mine") == b"result"
    assert await harness.redis.exists("arq:job:mine", "arq:retry:mine", "arq:in-progress:mine") == 0
    assert await harness.redis.zrange("arq:queue", 0, -1) == [b"stolen"]  # untouched: the thief's job
    assert await harness.redis.get("arq:in-progress:stolen") == b"thief:1"
    assert await harness.redis.exists("arq:result:stolen", "arq:job:stolen") == 1  # the job key only


async def test_claim_starts_the_try_and_returns_the_envelope(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="s1")
    (claim,) = await harness.worker.leases.claim(harness.clock.ms(), 10, 100)
    assert claim.started.envelope == await harness.redis.get("arq:job:s1")
    assert (claim.started.started, claim.started.failures, claim.started.abort_requested) == (1, 0, False)
    assert await harness.redis.get("arq:retry:s1") == b"1"


async def test_a_claimed_job_given_back_unstarted_is_not_charged(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="back")
    (claim,) = await harness.worker.leases.claim(harness.clock.ms(), 10, 100)
    await harness.worker.executor.give_back("back", claim.token)
    info = await handle.status()
    assert (info.status, info.tries, info.interruptions) == (JobStatus.QUEUED, 0, 0)


async def test_claim_reports_when_the_next_deferred_job_is_due(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="later", defer_by=5)
    batch = await harness.worker.leases.claim_batch(harness.clock.ms(), 10, 100)
    assert (batch.claims, batch.next_due_ms) == ([], harness.clock.ms() + 5_000)
