"""Fairness between the keys of a queue (``@task(fair_by=...)``): round-robin across keys, FIFO within one."""

from __future__ import annotations

import re

import pytest

from tests.sample_tasks import TenantIn
from tests.unit.harness import Harness
from worker import InvalidJobOptions, JobContext, JobRequest, JobStatus, TaskDefinitionError, task
from worker.protocol.fairness import FAIR_STEP_MS, fair_state_key
from worker.protocol.scripts import include_source


async def _claim_order(harness: Harness, wanted: int) -> list[str]:
    batch = await harness.worker.leases.claim_batch(harness.clock.ms(), wanted, 500)
    return [c.job_id for c in batch.claims]


def _jobs(task: str, tenant: str, count: int) -> list[JobRequest]:
    if task == "ordered":
        return [JobRequest(task, {"run": "r", "tag": tenant}, job_id=f"{tenant}{i}") for i in range(count)]
    return [JobRequest(task, {"run": "r", "tenant": tenant}, job_id=f"{tenant}{i}") for i in range(count)]


async def test_a_small_tenant_is_served_next_to_a_big_ones_backlog(harness: Harness) -> None:
    await harness.client.enqueue_many(_jobs("fair_ordered", "a", 200))
    harness.clock.advance(1)
    await harness.client.enqueue_many(_jobs("fair_ordered", "b", 5))
    first = await _claim_order(harness, 12)
    assert {f"b{i}" for i in range(5)} <= set(first)  # all five within the first twelve claimed
    assert [j for j in first if j.startswith("a")] == [f"a{i}" for i in range(len(first) - 5)]  # FIFO per tenant
    assert [j for j in first if j.startswith("b")] == [f"b{i}" for i in range(5)]


async def test_without_fair_by_the_small_tenant_waits_behind_the_backlog(harness: Harness) -> None:
    await harness.client.enqueue_many(_jobs("ordered", "a", 200))
    harness.clock.advance(1)
    await harness.client.enqueue_many(_jobs("ordered", "b", 5))
    first = await _claim_order(harness, 200)
    assert all(j.startswith("a") for j in first)


async def test_a_tenants_turn_follows_its_backlog_and_is_forgotten_after(harness: Harness) -> None:
    queue = harness.settings.queue_name
    await harness.client.enqueue_many(_jobs("fair_ordered", "a", 3))
    scores = [await harness.redis.zscore(queue, f"a{i}") for i in range(3)]
    assert scores == pytest.approx([harness.clock.ms() + i * FAIR_STEP_MS for i in range(3)], abs=1e-4)
    state = fair_state_key(queue, "a")
    assert float(await harness.redis.get(state)) == pytest.approx(scores[-1], abs=1e-4)
    assert 0 < await harness.redis.pttl(state) <= 61_000
    job = await harness.client.enqueue("fair_ordered", TenantIn(run="r", tenant="a"), defer_by=30)
    assert (await job.status()).status is JobStatus.DEFERRED  # a deferred job keeps its due time


async def test_fair_by_must_name_a_payload_field_and_takes_no_priority(harness: Harness) -> None:
    with pytest.raises(TaskDefinitionError, match="fair_by must name a field of TenantIn"):

        @task(name="bad_fair", fair_by="nope")
        async def bad_fair(ctx: JobContext, payload: TenantIn) -> None: ...

    with pytest.raises(TaskDefinitionError, match="does not combine with priority"):

        @task(name="bad_fair_priority", fair_by="tenant", priority=3)
        async def bad_fair_priority(ctx: JobContext, payload: TenantIn) -> None: ...

    with pytest.raises(InvalidJobOptions, match="they take no priority") as caught:
        await harness.client.enqueue("fair_ordered", TenantIn(run="r", tenant="a"), priority=2)
    assert caught.value.field == "priority"
    with pytest.raises(InvalidJobOptions, match="key of 1 to 256 characters"):
        await harness.client.enqueue("fair_ordered", TenantIn(run="r", tenant=""))
    assert await harness.redis.zcard(harness.settings.queue_name) == 0


def test_the_fair_step_is_the_same_in_python_and_lua() -> None:
    step = re.search(r"local FAIR_STEP = ([\d.]+)", include_source("fair"))
    assert step is not None
    assert float(step.group(1)) == FAIR_STEP_MS
