"""Priorities with a real worker process: high-priority jobs enqueued behind a long low-priority backlog
start before ~200 more of the low ones (the issue's measure; the figures are printed for the record)."""

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

LOW, HIGH = 10_000, 20


async def test_high_priority_jobs_overtake_a_backlog_of_low_ones(client: Client, start_worker: StartWorker) -> None:
    run = uuid.uuid4().hex[:8]
    order = f"order:{run}"
    start_worker()
    await client.enqueue_many([JobRequest("ordered", {"run": run, "tag": f"low{i}"}) for i in range(LOW)])
    deadline = time.monotonic() + 60
    while await reply(client.redis.llen(order)) < 50:  # the worker is busy with the backlog
        assert time.monotonic() < deadline, "the worker did not start the low jobs"
        await asyncio.sleep(0.02)
    before = int(await reply(client.redis.llen(order)))
    await client.enqueue_many([JobRequest("ordered", {"run": run, "tag": f"high{i}"}, priority=9) for i in range(HIGH)])
    while True:
        started = [t.decode() for t in await reply(client.redis.lrange(order, 0, -1))]
        if sum(t.startswith("high") for t in started) == HIGH:
            break
        assert time.monotonic() < deadline + 60, f"only {sum(t.startswith('high') for t in started)} high jobs started"
        await asyncio.sleep(0.05)
    await client.redis.delete(client.settings.queue_name)  # the rest of the backlog is not needed
    after = started[before:]
    highs = [i for i, t in enumerate(after) if t.startswith("high")]
    lows_before_each = [sum(1 for t in after[:i] if t.startswith("low")) for i in highs]
    print(f"low jobs started after the high ones were enqueued, before each high one: {lows_before_each}")
    assert max(lows_before_each) < 200
    assert sorted(after[i] for i in highs) == sorted(f"high{i}" for i in range(HIGH))  # each once
