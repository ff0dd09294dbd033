"""Idle workers wake on the queue's marker, never miss one, and still poll for stock arq producers."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from tests.unit.harness import Harness
from worker.engine.leases import ClaimBatch, Leases
from worker.protocol import serialization

SLOW_POLL_S = 30.0  # a fallback poll this slow never picks a job up within a test


async def start_idle(h: Harness) -> asyncio.Task[None]:
    loop = asyncio.create_task(h.worker.async_run())
    deadline = time.monotonic() + 2
    while not h.worker.marker.blocking:
        assert time.monotonic() < deadline, "the worker never blocked on its queue's marker"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the loop has claimed nothing and waits
    return loop


async def stop(h: Harness, loop: asyncio.Task[None]) -> None:
    h.worker.handle_sig(signal.SIGTERM)
    await asyncio.wait_for(loop, 2)


async def test_an_idle_worker_wakes_on_enqueue_without_waiting_for_the_fallback_poll(make_harness: Any) -> None:
    h = make_harness(poll_delay_s=SLOW_POLL_S)
    loop = await start_idle(h)
    handle = await h.client.enqueue("add", {"a": 2, "b": 3})
    assert (await handle.result(timeout_s=5)).total == 5
    batch = await h.client.enqueue_many([])
    assert batch == []
    await stop(h, loop)


async def test_a_batch_enqueue_wakes_an_idle_worker(make_harness: Any) -> None:
    h = make_harness(poll_delay_s=SLOW_POLL_S)
    loop = await start_idle(h)
    from worker.client.producer import job_requests

    handles = await h.client.enqueue_many(job_requests("add", [{"a": i, "b": 1} for i in range(5)]))
    assert [(await x.result(timeout_s=5)).total for x in handles] == [1, 2, 3, 4, 5]
    await stop(h, loop)


async def test_a_job_enqueued_between_the_claim_and_the_wait_is_not_lost(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(poll_delay_s=SLOW_POLL_S)
    real_claim = Leases.claim_batch
    sent: list[str] = []

    async def claim_then_enqueue(self: Leases, *args: Any, **kwargs: Any) -> ClaimBatch:
        batch = await real_claim(self, *args, **kwargs)
        if armed.is_set() and not sent:  # the claim has looked at the queue; a job arrives right now
            sent.append((await h.client.enqueue("add", {"a": 1, "b": 1})).job_id)
        return batch

    armed = asyncio.Event()
    monkeypatch.setattr(Leases, "claim_batch", claim_then_enqueue)
    loop = await start_idle(h)
    armed.set()
    first = await h.client.enqueue("add", {"a": 2, "b": 2})  # its marker makes one more claim, during which...
    assert (await first.result(timeout_s=5)).total == 4
    deadline = time.monotonic() + 5
    while not sent or not await h.redis.exists(f"arq:result:{sent[0]}"):
        assert time.monotonic() < deadline, "the wake-up sent during the claim was lost"
        await asyncio.sleep(0.01)
    await stop(h, loop)


async def test_jobs_of_a_stock_arq_producer_are_picked_up_by_the_fallback_poll(make_harness: Any) -> None:
    h = make_harness(poll_delay_s=0.05)
    loop = await start_idle(h)
    h.redis.job_serializer = serialization.dumps  # a plain arq producer: it sends no wake-up signal
    job = await h.redis.enqueue_job("add", {"a": 40, "b": 2})
    assert job is not None
    assert (await h.client.job(job.job_id).wait(timeout_s=5)).success
    await stop(h, loop)


async def test_a_deferred_job_runs_when_due_without_waiting_for_the_fallback_poll(make_harness: Any) -> None:
    h = make_harness(poll_delay_s=SLOW_POLL_S)
    loop = await start_idle(h)
    # The worker's clock is the injected one: make the job due 0.2 s from now and let the clock move.
    handle = await h.client.enqueue("add", {"a": 1, "b": 2}, defer_by=0.2)
    await asyncio.sleep(0.05)
    h.clock.advance(0.2)
    assert (await handle.result(timeout_s=5)).total == 3
    await stop(h, loop)


async def test_a_draining_worker_waits_for_its_jobs_instead_of_spinning(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(poll_delay_s=SLOW_POLL_S, shutdown_grace_s=5)
    await h.client.enqueue("progressing", {"seconds": 0.3}, job_id="busy")
    await h.client.enqueue("add", {"a": 1, "b": 1}, job_id="later", defer_by=0.05)  # the claim's next due time
    cycles = 0
    real_cycle = type(h.worker).run_cycle

    async def counting(self: Any, **kwargs: Any) -> int:
        nonlocal cycles
        cycles += 1
        return int(await real_cycle(self, **kwargs))

    monkeypatch.setattr(type(h.worker), "run_cycle", counting)
    loop = await start_idle(h)
    h.worker.handle_sig(signal.SIGTERM)  # drain: nothing new is claimed...
    h.clock.advance(1)  # ...so the next due time passes and stays in the past
    await asyncio.sleep(0.1)
    assert cycles < 10  # the loop sleeps until the running job ends (it would spin on the past due time)
    await asyncio.wait_for(loop, 3)
    assert (await h.client.job("busy").wait(timeout_s=1)).success


async def test_a_finished_job_costs_no_claim_when_the_last_one_left_nothing_behind(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(poll_delay_s=SLOW_POLL_S)
    real_claim = Leases.claim_batch
    claims: list[int] = []

    async def counted(self: Leases, now_ms: int, wanted: int, scan: int, local: Any = None) -> ClaimBatch:
        batch = await real_claim(self, now_ms, wanted, scan, local)
        claims.append(len(batch.claims))
        return batch

    monkeypatch.setattr(Leases, "claim_batch", counted)
    loop = await start_idle(h)
    assert claims == [0]  # the start-up claim; then the worker blocks on the marker
    for n in range(3):
        handle = await h.client.enqueue("add", {"a": n, "b": 1})
        assert (await handle.result(timeout_s=5)).total == n + 1
        deadline = time.monotonic() + 5
        while not h.worker.marker.blocking:
            assert time.monotonic() < deadline, "the worker did not block again"
            await asyncio.sleep(0.01)
    assert claims == [0, 1, 1, 1]  # one claim per job (its marker), none for the freed slots
    await stop(h, loop)
