"""Several queues per worker process (JOBQ_QUEUES), with a real worker: strict order never starves the first
queue, and weights share the slots (the issue's measures; the figures are printed for the record)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter

import pytest

from tests.harness import reply
from tests.integration.harness import StartWorker
from worker import JobRequest
from worker.client.producer import Client

pytestmark = pytest.mark.integration


async def _members(client: Client) -> set[str]:
    return {m.decode() for m in await reply(client.redis.zrange("jobq:workers", 0, -1))}


async def _started(client: Client, order: str) -> list[str]:
    return [t.decode() for t in await reply(client.redis.lrange(order, 0, -1))]


async def _wait_started(client: Client, order: str, count: int, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while len(started := await _started(client, order)) < count:
        assert time.monotonic() < deadline, f"only {len(started)} of {count} jobs started"
        await asyncio.sleep(0.05)
    return started


def _jobs(run: str, queue: str, tag: str, count: int, seconds: float = 0.0) -> list[JobRequest]:
    return [JobRequest("ordered", {"run": run, "tag": tag, "seconds": seconds}, queue=queue) for _ in range(count)]


async def test_strict_order_serves_the_first_queue_before_a_busy_second_one(
    client: Client, start_worker: StartWorker
) -> None:
    run = uuid.uuid4().hex[:8]
    order, high, low = f"order:{run}", client.settings.queue_name, client.settings.queue_name + ":low"
    start_worker(JOBQ_QUEUES=f"{high},{low}")
    await client.enqueue_many(_jobs(run, low, "low", 3000, 0.005))
    before = len(await _wait_started(client, order, 50, 60))  # the low queue has every slot
    await client.enqueue_many(_jobs(run, high, "high", 20, 0.005))
    deadline = time.monotonic() + 60
    while (started := await _started(client, order))[before:].count("high") < 20:
        assert time.monotonic() < deadline, "the high jobs did not all start"
        await asyncio.sleep(0.05)
    await client.redis.delete(low)
    after = started[before:]
    last_high = max(i for i, tag in enumerate(after) if tag == "high")
    lows = after[:last_high].count("low")
    print(f"strict: low jobs started after the high ones were enqueued, before the last high one: {lows}")
    assert lows < 2 * client.settings.max_jobs  # at most the ones a freed slot took before the high jobs landed


async def test_weighted_queues_share_the_slots_by_weight(client: Client, start_worker: StartWorker) -> None:
    run = uuid.uuid4().hex[:8]
    order, base = f"order:{run}", client.settings.queue_name
    queues = {base: 5, f"{base}:b": 3, f"{base}:c": 1}
    for queue in queues:  # all three saturated: far more jobs than run while the shares are measured
        await client.enqueue_many(_jobs(run, queue, queue, 1500, 0.03))
    start_worker(JOBQ_QUEUES=",".join(f"{q}={w}" for q, w in queues.items()), JOBQ_MAX_JOBS="9")
    started = await _wait_started(client, order, 1000, 120)
    for queue in queues:
        await client.redis.delete(queue)
    window = started[100:1000]  # past the start-up, every queue still has a backlog
    counts = Counter(window)
    shares = {q: counts[q] / len(window) for q in queues}
    print("weighted 5:3:1, measured shares:", {q.rsplit(":", 1)[-1]: round(s, 3) for q, s in shares.items()})
    for queue, weight in queues.items():
        assert shares[queue] == pytest.approx(weight / 9, rel=0.10)
    assert all(counts[q] < 1500 for q in queues)  # none ran dry during the window


async def test_a_stop_signal_drains_every_lane_and_each_leaves_the_fleet(
    client: Client, start_worker: StartWorker
) -> None:
    run = uuid.uuid4().hex[:8]
    first, second = client.settings.queue_name, client.settings.queue_name + ":second"
    worker = start_worker(JOBQ_QUEUES=f"{first},{second}")
    deadline = time.monotonic() + 30
    while not (lanes := {m for m in await _members(client) if m.endswith(f"/{second}")}):
        assert time.monotonic() < deadline, "the second lane never beat"  # it beats as <id>/<queue>
        await asyncio.sleep(0.05)
    handle = await client.enqueue("ordered", {"run": run, "tag": "slow", "seconds": 1.0}, queue=second)
    await _wait_started(client, f"order:{run}", 1, 30)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    assert (await handle.wait(timeout_s=5)).success  # the running job finished within the grace period
    assert "Traceback" not in worker.log()
    left = await _members(client)
    assert not left & (lanes | {lane.split("/")[0] for lane in lanes})
    assert "serving queues" in worker.log()
