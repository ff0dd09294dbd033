"""The worker, driven one step at a time on fakeredis with an injected clock."""

from __future__ import annotations

import asyncio
import signal

import orjson
import pytest
from arq.jobs import Job

from tests.unit.harness import Harness
from worker import JobFailed, JobNotFound, JobStatus, ResultTimeout, queue_stats


async def test_job_runs_and_its_result_is_stored_with_the_ttl(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 2, "b": 3})
    assert await harness.run_due() == 1
    result = await handle.wait(timeout_s=1)
    assert result.success
    assert result.unwrap().total == 5  # rebuilt as the task's result model
    assert result.tries == 1
    assert (await handle.status()).status == JobStatus.SUCCEEDED
    ttl_ms = await harness.redis.pttl(f"arq:result:{handle.job_id}")
    assert 0 < ttl_ms <= harness.settings.result_ttl_s * 1000
    assert await harness.redis.zcard("arq:queue") == 0
    assert await harness.redis.exists(f"arq:job:{handle.job_id}") == 0


async def test_result_ttl_comes_from_the_settings(make_harness: object) -> None:
    h = make_harness(result_ttl_s=42)  # type: ignore[operator]
    handle = await h.client.enqueue("add", {"a": 2, "b": 3})
    await h.run_due()
    assert 40_000 < await h.redis.pttl(f"arq:result:{handle.job_id}") <= 42_000


async def test_deferred_job_runs_at_its_time_and_not_before(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, defer_by=60)
    harness.clock.advance(59.999)
    assert await harness.run_due() == 0
    assert (await handle.status()).status == JobStatus.DEFERRED
    harness.clock.advance(0.001)
    assert await harness.run_due() == 1
    result = await handle.wait(timeout_s=1)
    assert result.success
    assert (result.started_at - result.enqueued_at).total_seconds() == 60


async def test_failure_is_retried_later_by_deferring_in_redis(harness: Harness) -> None:
    handle = await harness.client.enqueue("flaky", {"failures": 1})
    assert await harness.run_due() == 1
    # flaky's policy: no jitter, 10 s between tries. The job waits in the queue, not in the worker.
    assert await harness.redis.zscore("arq:queue", handle.job_id) == harness.clock.ms() + 10_000
    assert (await handle.status()).status == JobStatus.RETRYING
    harness.clock.advance(9.9)
    assert await harness.run_due() == 0
    harness.clock.advance(0.1)
    assert await harness.run_due() == 1
    result = await handle.wait(timeout_s=1)
    assert (result.success, result.value, result.tries) == (True, 2, 2)


async def test_exhausted_tries_store_the_error_as_data(harness: Harness) -> None:
    handle = await harness.client.enqueue("flaky", {"failures": 5})
    for _ in range(3):
        assert await harness.run_due() == 1
        harness.clock.advance(10)
    result = await handle.wait(timeout_s=1)
    assert not result.success
    assert result.tries == 3
    assert result.error is not None
    assert result.error.error_type == "tests.sample_tasks.FlakyError"
    assert result.error.message == "failure on try 3"
    assert "Traceback" in (result.error.traceback or "")
    with pytest.raises(JobFailed, match="failure on try 3"):
        await handle.result(timeout_s=1)
    stored = orjson.loads(await harness.redis.get(f"arq:result:{handle.job_id}"))["d"]
    assert set(stored["r"]) == {"type", "message", "traceback"}


async def test_timeout_is_a_classified_failure_naming_the_limit(harness: Harness) -> None:
    handle = await harness.client.enqueue("slow", {"seconds": 5})
    await harness.run_due()
    result = await handle.wait(timeout_s=1)
    assert result.error is not None
    assert result.error.error_type == "worker.errors.JobTimeout"
    assert "exceeded its timeout of 0.2s" in result.error.message


async def test_enqueue_timeout_override_is_applied(harness: Harness) -> None:
    handle = await harness.client.enqueue("slow", {"seconds": 0.1}, timeout_s=0.02)
    await harness.run_due()
    error = (await handle.wait(timeout_s=1)).error
    assert error is not None
    assert "timeout of 0.02s" in error.message


async def test_task_that_swallows_cancellation_still_times_out(harness: Harness) -> None:
    handle = await harness.client.enqueue("swallow_cancel", {"seconds": 5})
    await harness.run_due()
    error = (await handle.wait(timeout_s=2)).error
    assert error is not None
    assert error.error_type == "worker.errors.JobTimeout"


async def test_invalid_payload_at_dequeue_fails_at_once_naming_the_field(harness: Harness) -> None:
    # A producer that skipped validation (here: plain arq) can still write a bad payload.
    await harness.redis.enqueue_job("add", {"a": "x", "b": 1}, _job_id="bad")
    await harness.run_due()
    result = await harness.client.job("bad").wait(timeout_s=1)
    assert result.tries == 1  # no retry: the payload will not get better
    assert result.error is not None
    assert result.error.error_type == "worker.errors.InvalidPayload"
    assert "a: Input should be a valid integer" in result.error.message


async def test_unknown_task_at_dequeue_is_marked_failed(harness: Harness) -> None:
    await harness.redis.enqueue_job("no_such_task", {}, _job_id="ghost")
    await harness.run_due()
    error = (await harness.client.job("ghost").wait(timeout_s=1)).error
    assert error is not None
    assert error.error_type == "worker.errors.UnknownTaskError"
    assert "unknown task 'no_such_task'" in error.message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x80\x04\x95\x00garbage\xff", "not a jobq envelope: invalid JSON"),
        (b'{"v": 99, "d": {}}', "envelope version 99 is not supported"),
        (b'{"v": 1, "d": {"f": 1, "a": [], "k": {}, "t": null, "et": 0}}', "malformed job body"),
    ],
)
async def test_undecodable_job_is_marked_failed_and_the_worker_keeps_going(
    harness: Harness, raw: bytes, reason: str
) -> None:
    await harness.redis.set("arq:job:garbage", raw)
    await harness.redis.zadd("arq:queue", {"garbage": harness.clock.ms()})
    good = await harness.client.enqueue("add", {"a": 1, "b": 1})
    assert await harness.run_due() == 2
    failed = await harness.client.job("garbage").wait(timeout_s=1)
    assert failed.error is not None
    assert "unable to decode job" in failed.error.message
    assert reason in failed.error.message
    assert (await good.wait(timeout_s=1)).success
    assert await harness.redis.zcard("arq:queue") == 0


async def test_the_claim_parks_a_job_whose_task_has_no_free_slot_and_the_freed_slot_puts_it_back(
    harness: Harness,
) -> None:
    first = await harness.client.enqueue("limited", {"seconds": 0.3}, job_id="first")
    second = await harness.client.enqueue("limited", {"seconds": 0.0}, job_id="second")
    assert await harness.worker.run_cycle() == 1  # "first" takes the task's one slot; the claim parks "second"
    info = await second.status()
    assert (info.status, info.tries, info.interruptions) == (JobStatus.WAITING, 0, 0)
    assert await harness.redis.exists("arq:in-progress:second", "arq:retry:second") == 0  # no lease, no start
    assert await harness.redis.zrange("jobq:waiting:arq:queue:task:limited", 0, -1) == [b"second"]
    assert (await queue_stats(harness.redis, "arq:queue", now=harness.clock())).waiting == 1
    assert (await first.wait(timeout_s=5)).success
    await harness.worker.executor.flush()
    assert harness.worker.executor.local_slots.owed  # the freed slot owes the waiting job
    # The next claim puts "second" back at its due time and takes it, with no clock advanced.
    assert await harness.worker.run_cycle(when_needed=True) == 1
    assert await harness.redis.exists("jobq:waiting:arq:queue:task:limited", "jobq:gates:arq:queue") == 0
    result = await second.wait(timeout_s=5)
    assert (result.success, result.tries, result.interruptions) == (True, 1, 0)


async def test_a_stopping_worker_puts_back_the_job_its_freed_slot_owes_for_the_fleet(harness: Harness) -> None:
    first = await harness.client.enqueue("limited", {"seconds": 0.05}, job_id="first")
    await harness.client.enqueue("limited", {"seconds": 0.0}, job_id="second")
    due_ms = await harness.redis.zscore("arq:queue", "second")
    assert await harness.worker.run_cycle() == 1  # "second" parked by the claim
    harness.worker.handle_sig(signal.SIGTERM)  # stops claiming; "first" finishes
    assert (await first.wait(timeout_s=5)).success
    await harness.worker.executor.flush()
    assert await harness.worker.run_cycle() == 0
    # Back at its due time for another worker, not left for the gate's re-check.
    assert await harness.redis.zscore("arq:queue", "second") == due_ms
    assert await harness.redis.exists("jobq:waiting:arq:queue:task:limited", "jobq:gates:arq:queue") == 0
    assert not harness.worker.executor.local_slots.owed


async def test_a_claimed_job_that_finds_its_slot_taken_gives_its_start_back_and_waits_parked(harness: Harness) -> None:
    """The worker's own check, for a job the claim did not hold back (a claim not told the slots, here)."""
    first = await harness.client.enqueue("limited", {"seconds": 0.3}, job_id="first")
    second = await harness.client.enqueue("limited", {"seconds": 0.0}, job_id="second")
    worker = harness.worker
    batch = await worker.leases.claim_batch(harness.clock.ms(), 2, 100)  # no slots told: both claimed
    assert [c.job_id for c in batch.claims] == ["first", "second"]
    for claim in batch.claims:
        worker.tries.start(claim, worker.run_claimed)
    for _ in range(200):  # the park is written while "first" runs
        if (await second.status()).status is JobStatus.WAITING:
            break
        await asyncio.sleep(0.01)
    info = await second.status()
    assert (info.status, info.tries, info.interruptions) == (JobStatus.WAITING, 0, 0)
    assert await harness.redis.get("arq:retry:second") == b"0"  # its start was given back: not a try
    assert await harness.redis.zrange("jobq:waiting:arq:queue:task:limited", 0, -1) == [b"second"]
    assert (await first.wait(timeout_s=5)).success
    await worker.executor.flush()
    assert await worker.run_cycle(when_needed=True) == 1  # the freed slot's claim puts it back and takes it
    assert (await second.wait(timeout_s=5)).success
    assert await harness.redis.zscore("arq:queue", "second") is None


async def test_result_is_readable_with_stock_arq(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 20, "b": 22})
    await harness.run_due()
    assert await Job(handle.job_id, harness.redis, _deserializer=harness.redis.job_deserializer).result(timeout=1) == {
        "total": 42,
        "try_number": 1,
    }


async def test_job_without_a_kept_result_is_not_found_after_it_ran(make_harness: object) -> None:
    h = make_harness(result_ttl_s=0)  # type: ignore[operator]
    handle = await h.client.enqueue("add", {"a": 1, "b": 1})
    await h.run_due()
    with pytest.raises(JobNotFound, match="its task keeps none"):
        await handle.wait(timeout_s=1)
    assert (await handle.status()).status == JobStatus.NOT_FOUND


async def test_waiting_longer_than_asked_raises_result_timeout(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1})
    with pytest.raises(ResultTimeout, match=r"did not finish within 0\.05s"):
        await handle.wait(timeout_s=0.05)
    assert (await handle.status()).status == JobStatus.QUEUED
