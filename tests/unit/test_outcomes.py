"""Every outcome branch of one try, driven one job at a time with injected time."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.unit.harness import Harness
from worker import DeadLetterStore, JobContext, JobStatus, Outcome


def store(h: Harness) -> DeadLetterStore:
    return DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=h.settings.job_expires_s, clock_ms=h.clock.ms)


async def test_permanent_error_is_dead_lettered_at_once_with_its_envelope(harness: Harness) -> None:
    handle = await harness.client.enqueue("permanent", {"note": "no"}, job_id="p1")
    envelope = await harness.redis.get("arq:job:p1")
    await harness.run_due()
    result = await handle.wait(timeout_s=1)
    assert (result.outcome, result.status, result.tries) == (Outcome.DEAD_LETTERED, JobStatus.DEAD_LETTERED, 1)
    entry = await store(harness).show("p1")
    assert entry.task == "permanent"
    assert entry.error_type == "worker.errors.PermanentError"
    assert entry.message == "cannot ever work: no"
    assert "Traceback" in (entry.traceback or "")
    assert entry.envelope_bytes() == envelope
    assert (entry.tries, entry.interruptions, entry.failed_at_ms) == (1, 0, harness.clock.ms())
    assert entry.enqueued_at_ms == harness.clock.ms()
    assert await harness.redis.zcard("arq:queue") == 0
    assert await harness.redis.exists("arq:job:p1", "arq:retry:p1", "jobq:meta:p1", "arq:in-progress:p1") == 0


async def test_exhausted_tries_are_dead_lettered(harness: Harness) -> None:
    handle = await harness.client.enqueue("flaky", {"failures": 9})
    for _ in range(3):
        await harness.run_due()
        harness.clock.advance(10)
    result = await handle.wait(timeout_s=1)
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 3)
    assert (await store(harness).show(handle.job_id)).message == "failure on try 3"


async def test_retrying_job_shows_its_last_error_and_tries(harness: Harness) -> None:
    handle = await harness.client.enqueue("flaky", {"failures": 9})
    await harness.run_due()
    info = await handle.status()
    assert info.status is JobStatus.RETRYING
    assert info.tries == 1
    assert info.last_error is not None
    assert (info.last_error.error_type, info.last_error.message) == (
        "tests.sample_tasks.FlakyError",
        "failure on try 1",
    )
    assert info.scheduled_at is not None
    assert info.scheduled_at.timestamp() == harness.clock() + 10


async def test_retry_later_reschedules_at_the_asked_time(harness: Harness) -> None:
    handle = await harness.client.enqueue("retry_later", {"after_s": 42})
    await harness.run_due()
    assert await harness.redis.zscore("arq:queue", handle.job_id) == harness.clock.ms() + 42_000
    harness.clock.advance(41.9)
    assert await harness.run_due() == 0
    harness.clock.advance(0.1)
    await harness.run_due()
    assert (await handle.wait(timeout_s=1)).value == 2


async def test_settings_give_up_list_applies_to_every_task(make_harness: Any) -> None:
    h = make_harness(give_up_on=["KeyError"])
    handle = await h.client.enqueue("key_error", {})
    await h.run_due()
    result = await handle.wait(timeout_s=1)
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 1)


async def test_without_the_give_up_list_the_same_error_is_retried(harness: Harness) -> None:
    handle = await harness.client.enqueue("key_error", {})
    await harness.run_due()
    assert (await handle.status()).status is JobStatus.RETRYING


async def test_timeout_is_retried_then_dead_lettered_as_timed_out(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(max_tries=2)
    handle = await h.client.enqueue("progressing", {"seconds": 5}, timeout_s=0.02)
    with caplog.at_level(logging.INFO, logger="jobq.job"):
        await h.run_due()
        assert (await handle.status()).status is JobStatus.RETRYING
        h.clock.advance(60)
        await h.run_due()
    result = await handle.wait(timeout_s=1)
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 2)
    assert result.error is not None
    assert result.error.error_type == "worker.errors.JobTimeout"
    assert "timeout of 0.02s" in result.error.message
    lines = [(r.outcome, r.failure) for r in caplog.records if r.name == "jobq.job"]  # type: ignore[attr-defined]
    assert lines == [("retrying", "timed_out"), ("dead_lettered", "timed_out")]


async def test_task_that_ignores_cancellation_is_abandoned_and_recorded_timed_out(harness: Harness) -> None:
    handle = await harness.client.enqueue("ignore_cancel", {"seconds": 0.3})
    await harness.run_due()  # timeout 0.05 s + grace 0.05 s, not the 0.3 s the task insists on
    result = await handle.wait(timeout_s=1)
    assert result.error is not None
    assert result.error.error_type == "worker.errors.JobTimeout"
    abandoned = harness.worker.executor.abandoned
    assert len(abandoned) == 1
    await asyncio.wait(abandoned, timeout=1)  # it does finish on its own, later
    assert not abandoned


async def test_result_that_cannot_be_stored_is_a_permanent_failure(harness: Harness) -> None:
    handle = await harness.client.enqueue("unserializable", {})
    await harness.run_due()
    result = await handle.wait(timeout_s=1)
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 1)
    assert result.error is not None
    assert "cannot be stored as JSON" in result.error.message


async def test_expired_job_is_dead_lettered_without_envelope(harness: Harness) -> None:
    await harness.redis.zadd("arq:queue", {"vanished": harness.clock.ms()})
    await harness.run_due()
    entry = await store(harness).show("vanished")
    assert entry.error_type == "worker.errors.JobExpired"
    assert entry.envelope is None


async def test_undecodable_envelope_is_kept_byte_for_byte(harness: Harness) -> None:
    raw = b"\xff\xfe not json at all"
    await harness.redis.set("arq:job:junk", raw)
    await harness.redis.zadd("arq:queue", {"junk": harness.clock.ms()})
    await harness.run_due()
    entry = await store(harness).show("junk")
    assert entry.envelope_base64
    assert entry.envelope_bytes() == raw
    assert entry.error_type == "worker.errors.SerializationError"


async def test_crash_interruptions_are_counted_but_not_charged(harness: Harness) -> None:
    handle = await harness.client.enqueue("flaky", {"failures": 1}, job_id="crashy")
    await harness.redis.incrby("arq:retry:crashy", 2)  # two starts whose workers died mid-try
    await harness.run_due()
    info = await handle.status()
    assert (info.status, info.tries, info.interruptions) == (JobStatus.RETRYING, 1, 2)
    harness.clock.advance(10)
    await harness.run_due()
    result = await handle.wait(timeout_s=1)
    assert (result.success, result.value, result.tries, result.interruptions) == (True, 2, 2, 2)


async def test_job_that_keeps_killing_workers_is_quarantined(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="poison")
    limit = harness.settings.max_interruptions
    await harness.redis.incrby("arq:retry:poison", limit + 1)
    await harness.run_due()
    result = await handle.wait(timeout_s=1)
    assert result.outcome is Outcome.DEAD_LETTERED
    assert result.error is not None
    assert result.error.error_type == "worker.errors.JobQuarantined"
    assert f"interrupted {limit + 1} times" in result.error.message


async def test_shutdown_interrupts_the_try_and_requeues_the_job_uncharged(harness: Harness) -> None:
    handle = await harness.client.enqueue("slow", {"seconds": 0.15}, job_id="cut")
    await harness.worker.run_cycle()
    await asyncio.sleep(0.02)
    harness.worker.tasks["cut"].cancel()  # what arq's SIGTERM handler does
    await asyncio.gather(*harness.worker.tasks.values())
    harness.worker.tasks.clear()
    assert await harness.redis.exists("arq:in-progress:cut") == 0
    assert await harness.redis.zscore("arq:queue", "cut") is not None
    assert (await handle.status()).status is JobStatus.QUEUED
    await harness.run_due()
    result = await handle.wait(timeout_s=1)
    assert (result.success, result.tries, result.interruptions) == (True, 1, 1)


async def test_producer_job_try_is_honoured(harness: Harness) -> None:
    job = await harness.redis.enqueue_job("flaky", {"failures": 9}, _job_try=3)
    assert job is not None
    await harness.run_due()
    result = await harness.client.job(job.job_id).wait(timeout_s=1)
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 3)


async def test_result_records_the_outcome_for_any_reader(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1})
    await harness.run_due()
    stored = orjson.loads(await harness.redis.get(f"arq:result:{handle.job_id}"))["d"]
    assert (stored["o"], stored["t"], stored["n"], stored["s"]) == ("succeeded", 1, 0, True)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
async def test_progress_outside_0_to_1_is_refused(harness: Harness, fraction: float) -> None:
    ctx = JobContext("j", "t", 1, 1, 0, datetime.now(UTC), 1.0, "q", harness.redis)
    with pytest.raises(ValueError, match="from 0 to 1"):
        await ctx.report_progress(fraction)
