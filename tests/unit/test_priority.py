"""Priorities within a queue: higher first, FIFO within one, deferred jobs take theirs when due, and
stock arq's jobs are the default priority (see worker/protocol/priority.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.sample_tasks import AddIn, FlakyIn
from tests.unit.harness import Harness
from tests.unit.test_api import AUTH, TOKEN
from worker import InvalidJobOptions, JobContext, JobRequest, JobStatus, TaskDefinitionError, queue_stats, task
from worker.client.dead_letters import DeadLetterStore
from worker.http.api import create_app
from worker.observability.metrics import Metrics
from worker.protocol.priority import MAX_PRIORITY, PRIORITY_STEP, QueueScore, promote_key
from worker.protocol.scripts import include_source
from worker.protocol.waiting import PARKED_FLOOR, WAITING_BASE


async def _claim_order(harness: Harness, wanted: int, *, later_s: float = 0.0) -> list[str]:
    batch = await harness.worker.leases.claim_batch(harness.clock.ms() + round(later_s * 1000), wanted, 100)
    return [c.job_id for c in batch.claims]


def _add(job_id: str, priority: int | None = None, **options: object) -> JobRequest:
    return JobRequest("add", {"a": 1, "b": 1}, job_id=job_id, priority=priority, **options)  # type: ignore[arg-type]


async def test_higher_priorities_are_claimed_first_and_fifo_within_one(harness: Harness) -> None:
    await harness.client.enqueue_many([_add(f"low{i}") for i in range(3)])
    harness.clock.advance(0.001)
    await harness.client.enqueue_many([_add("mid0", 5), _add("high0", 9), _add("mid1", 5)])
    harness.clock.advance(0.001)
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="high1", priority=9)
    assert await _claim_order(harness, 10) == ["high0", "high1", "mid0", "mid1", "low0", "low1", "low2"]


async def test_a_deferred_job_takes_its_priority_when_it_is_due(harness: Harness) -> None:
    late = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="late", priority=5, defer_by=10)
    assert (await late.status()).status is JobStatus.DEFERRED
    await harness.client.enqueue_many([_add(f"low{i}") for i in range(3)])
    assert await _claim_order(harness, 10) == ["low0", "low1", "low2"]  # not due yet: not claimed
    assert await harness.redis.zcard(promote_key(harness.settings.queue_name)) == 1
    # Due now: promoted before the scan, so it comes before the default jobs due earlier than it.
    await harness.client.enqueue_many([_add(f"more{i}") for i in range(3)])
    assert await _claim_order(harness, 1, later_s=11) == ["late"]
    assert await harness.redis.zcard(promote_key(harness.settings.queue_name)) == 0


async def test_without_a_priority_a_deferred_job_waits_behind_the_jobs_due_before_it(harness: Harness) -> None:
    # The control of the test above: what the promotion changes.
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="late", defer_by=10)
    await harness.client.enqueue_many([_add(f"low{i}") for i in range(3)])
    harness.clock.advance(20)
    await harness.client.enqueue_many([_add(f"more{i}") for i in range(3)])
    assert await _claim_order(harness, 5) == ["low0", "low1", "low2", "late", "more0"]  # FIFO by due time


async def test_a_task_declares_a_default_priority_and_an_enqueue_overrides_it(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="plain")
    await harness.client.enqueue("urgent_add", {"a": 1, "b": 1}, job_id="urgent")
    harness.clock.advance(0.001)  # FIFO within a priority is by enqueue time (ties: by id)
    await harness.client.enqueue("urgent_add", {"a": 1, "b": 1}, job_id="demoted", priority=0)
    assert await _claim_order(harness, 3) == ["urgent", "plain", "demoted"]


async def test_stock_arq_jobs_have_the_default_priority(harness: Harness) -> None:
    # Scored by the injected clock's time (arq scores its jobs by the real clock, or the time it is given).
    due = datetime.fromtimestamp(harness.clock() - 1, tz=UTC)
    await harness.redis.enqueue_job("add", {"a": 1, "b": 2}, _job_id="arq-job", _defer_until=due)
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="jobq-high", priority=1)
    harness.clock.advance(0.001)
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="jobq-default")
    assert await _claim_order(harness, 3) == ["jobq-high", "arq-job", "jobq-default"]


async def test_a_prioritized_job_runs_and_its_status_tells_its_due_time(harness: Harness) -> None:
    job = await harness.client.enqueue("add", {"a": 2, "b": 3}, priority=MAX_PRIORITY)
    info = await job.status()
    assert info.status is JobStatus.QUEUED
    assert info.scheduled_at is not None
    assert info.scheduled_at.timestamp() == pytest.approx(harness.clock(), abs=0.002)
    assert await harness.run_due() == 1
    assert (await job.result(timeout_s=1)).total == 5


async def test_a_retry_goes_back_into_its_priority_when_due(harness: Harness) -> None:
    queue = harness.settings.queue_name
    job = await harness.client.enqueue("flaky", FlakyIn(failures=1), job_id="flaky", priority=3)
    assert await harness.run_due() == 1  # fails; the retry is due in 10 s
    assert (await job.status()).status is JobStatus.RETRYING
    assert await harness.redis.zrange(promote_key(queue), 0, -1) == [b"3:flaky"]
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="plain")
    assert await _claim_order(harness, 1, later_s=11) == ["flaky"]


async def test_stats_count_prioritized_jobs_as_ready_and_age_them_by_their_due_time(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1})
    harness.clock.advance(30)
    await harness.client.enqueue("add", {"a": 1, "b": 1}, priority=4)
    harness.clock.advance(10)
    await harness.client.enqueue("add", {"a": 1, "b": 1}, priority=4, defer_by=60)
    stats = await queue_stats(harness.redis, harness.settings.queue_name, now=harness.clock())
    assert (stats.ready, stats.deferred, stats.waiting) == (2, 1, 0)
    assert stats.oldest_ready_age_s == pytest.approx(40, abs=0.01)  # the default job, behind the prioritized one


async def test_bad_priorities_are_refused_with_the_option_named() -> None:
    with pytest.raises(TaskDefinitionError, match="priority must be an integer from 0"):

        @task(name="bad", priority=256)
        async def bad(ctx: JobContext, payload: AddIn) -> int:
            return 0


@pytest.mark.parametrize("priority", [-1, 256, 1.5, True, "9"])
async def test_an_enqueue_with_a_bad_priority_writes_nothing(harness: Harness, priority: object) -> None:
    with pytest.raises(InvalidJobOptions, match="priority must be an integer from 0") as caught:
        await harness.client.enqueue("add", {"a": 1, "b": 1}, priority=priority)  # type: ignore[call-overload]
    assert caught.value.field == "priority"
    assert await harness.redis.zcard(harness.settings.queue_name) == 0


def test_scores_decode_to_due_time_priority_and_parking() -> None:
    due = 1_800_000_000_123
    assert QueueScore.of(due) == QueueScore(due, 0, False)
    assert QueueScore.of(due - 9 * PRIORITY_STEP) == QueueScore(due, 9, False)
    assert QueueScore.of(WAITING_BASE + due - MAX_PRIORITY * PRIORITY_STEP) == QueueScore(due, MAX_PRIORITY, True)
    assert QueueScore.of(WAITING_BASE + due) == QueueScore(due, 0, True)
    assert WAITING_BASE + due - MAX_PRIORITY * PRIORITY_STEP > PARKED_FLOOR > due


def test_the_priority_step_is_the_same_in_python_and_lua() -> None:
    step = re.search(r"local PRIORITY_STEP = (\d+)", include_source("priority"))
    floor = re.search(r"local PARKED_FLOOR = (\d+)", include_source("waiting"))
    assert step is not None
    assert floor is not None
    assert int(step.group(1)) == PRIORITY_STEP == 2**42
    assert int(floor.group(1)) == PARKED_FLOOR == 2**51


@pytest.fixture
async def http(harness: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as client:
        yield client


async def test_the_http_api_enqueues_with_a_priority_and_names_a_bad_one(http: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="plain")
    body = {"task": "add", "payload": {"a": 1, "b": 2}, "job_id": "urgent", "priority": 200}
    created = await http.post("/v1/jobs", json=body, headers=AUTH)
    assert created.status == 201
    assert await _claim_order(harness, 2) == ["urgent", "plain"]
    refused = await http.post("/v1/jobs", json={**body, "job_id": "bad", "priority": 256}, headers=AUTH)
    assert refused.status == 422
    assert "priority" in await refused.text()
    assert await harness.redis.exists("arq:job:bad") == 0


async def test_a_replayed_dead_letter_keeps_its_priority(harness: Harness) -> None:
    queue = harness.settings.queue_name
    await harness.client.enqueue("permanent", {"note": "x"}, job_id="dead", priority=6)
    assert await harness.run_due() == 1
    assert await harness.redis.zscore(queue, "dead") is None  # dead-lettered
    store = DeadLetterStore(
        harness.redis, queue, job_expires_s=harness.settings.job_expires_s, clock_ms=harness.clock.ms
    )
    assert await store.replay("dead")
    score = await harness.redis.zscore(queue, "dead")
    assert score is not None
    assert QueueScore.of(score).priority == 6
