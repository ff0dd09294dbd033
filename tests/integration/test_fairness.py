"""Fairness with real worker processes: a tenant with 20 jobs enqueued behind another's 20,000 is served next
to them with ``fair_by``, and waits behind them without (the issue's measure; figures printed for the record)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.harness import reply
from tests.integration.harness import StartWorker
from worker import JobRequest
from worker.client.producer import Client

pytestmark = pytest.mark.integration

BIG, SMALL = 20_000, 20


async def _started(client: Client, order: str) -> list[str]:
    return [t.decode() for t in await reply(client.redis.lrange(order, 0, -1))]


async def _until(client: Client, order: str, done: object, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while not done(started := await _started(client, order)):  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out with {len(started)} jobs started"
        await asyncio.sleep(0.05)
    return started


def _requests(task: str, run: str, tenant: str, count: int) -> list[JobRequest]:
    field = "tenant" if task == "fair_ordered" else "tag"
    return [JobRequest(task, {"run": run, field: tenant, "seconds": 0.002}) for _ in range(count)]


async def _small_behind_big(client: Client, start_worker: StartWorker, task: str) -> tuple[int, list[str]]:
    """A's backlog, then B's jobs: how many of A's started after B's were enqueued, before B's last one (or the
    jobs started after B's enqueue, if B's did not all start while 2,000 of A's did)."""
    run = uuid.uuid4().hex[:8]
    order = f"order:{run}"
    start_worker()
    start_worker()
    await client.enqueue_many(_requests(task, run, "A", BIG))
    before = len(await _until(client, order, lambda s: len(s) >= 200, 60))
    await client.enqueue_many(_requests(task, run, "B", SMALL))
    started = await _until(
        client, order, lambda s: s[before:].count("B") == SMALL or s[before:].count("A") >= 2_000, 120
    )
    await client.redis.delete(client.settings.queue_name)
    after = started[before:]
    if after.count("B") < SMALL:
        return after.count("A"), after
    last_b = max(i for i, tenant in enumerate(after) if tenant == "B")
    return after[:last_b].count("A"), after


async def test_a_small_tenant_is_served_next_to_a_big_backlog(client: Client, start_worker: StartWorker) -> None:
    a_jobs, after = await _small_behind_big(client, start_worker, "fair_ordered")
    print(f"fair_by: {a_jobs} of A's jobs started after B's 20 were enqueued, before B's last one")
    assert after.count("B") == SMALL
    assert a_jobs <= 60  # B's 20 alternate with A's (plus the jobs the two workers held already)


async def test_without_fair_by_the_small_tenant_waits_behind_the_backlog(
    client: Client, start_worker: StartWorker
) -> None:
    a_jobs, after = await _small_behind_big(client, start_worker, "ordered")
    print(f"no fair_by: {after.count('B')} of B's 20 started while {a_jobs} of A's did")
    assert after.count("B") == 0
