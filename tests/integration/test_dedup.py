"""Deduplication with a real redis-server and a real worker process: a burst of Debounce enqueues runs once, with
the last payload; a UniqueFor enqueue while the holder runs is dropped (tasks in tests/dedup_tasks.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests import dedup_tasks
from tests.harness import reply
from tests.integration.harness import StartWorker
from worker import DedupOutcome, JobStatus
from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis
from worker.settings import JobqSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(redis_server: EmbeddedRedis, queue_name: str, make_settings: Callable[..., JobqSettings]) -> JobqSettings:
    return make_settings(redis_url=redis_server.url, queue_name=queue_name, task_modules=["tests.dedup_tasks"])


async def wait_status(client: Client, job_id: str, status: JobStatus, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while (await client.job(job_id).status()).status is not status:
        assert time.monotonic() < deadline, f"job {job_id} never became {status}"
        await asyncio.sleep(0.02)


async def test_a_burst_of_debounced_enqueues_runs_once_with_the_last_payload(
    client: Client, start_worker: StartWorker
) -> None:
    start_worker()
    handles = [await client.enqueue(dedup_tasks.reindex_soon, {"user": "u1", "note": f"n{i}"}) for i in range(10)]
    assert handles[0].created
    assert {h.job_id for h in handles} == {handles[0].job_id}  # each enqueue came within the window of the last
    assert [h.deduplicated for h in handles[1:]] == [DedupOutcome.REPLACED] * 9
    assert await handles[-1].result(timeout_s=30) == "n9"
    probe = f"probe:{client.settings.queue_name}:reindex_soon"
    assert await reply(client.redis.lrange(probe, 0, -1)) == [b"n9"]  # exactly one run


async def test_unique_for_drops_an_enqueue_while_the_holder_runs(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    first = await client.enqueue(dedup_tasks.rebuild, {"user": "u1", "note": "first", "seconds": 1.0})
    await wait_status(client, first.job_id, JobStatus.IN_PROGRESS)
    dropped = await client.enqueue(dedup_tasks.rebuild, {"user": "u1", "note": "second"})
    assert (dropped.job_id, dropped.created, dropped.deduplicated) == (first.job_id, False, DedupOutcome.DROPPED)
    assert await first.result(timeout_s=30) == "first"
    after = await client.enqueue(dedup_tasks.rebuild, {"user": "u1", "note": "after"})  # the holder finished
    assert after.created
    assert await after.result(timeout_s=30) == "after"
    probe = f"probe:{client.settings.queue_name}:rebuild"
    assert await reply(client.redis.lrange(probe, 0, -1)) == [b"first", b"after"]
