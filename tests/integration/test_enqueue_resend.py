"""An enqueue whose reply is lost is sent again by redis-py (it retries on a connection error): the second
send answers what the first one did, so the producer is told the truth and no job is created twice."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.integration.harness import WorkerProcess
from tests.integration.lossy_proxy import ReplyDroppingProxy
from worker import JobRequest
from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis
from worker.settings import JobqSettings

JOBS = 20


@pytest.fixture
def lossy(redis_server: EmbeddedRedis) -> Iterator[ReplyDroppingProxy]:
    proxy = ReplyDroppingProxy(redis_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
async def producer(settings: JobqSettings, lossy: ReplyDroppingProxy) -> AsyncIterator[Client]:
    async with Client(settings.model_copy(update={"redis_url": lossy.url})) as c:
        await c.enqueue("add", {"a": 0, "b": 0}, job_id="warm-up")  # the script is loaded: no NOSCRIPT below
        await c.redis.delete("arq:job:warm-up")
        await c.redis.zrem(settings.queue_name, "warm-up")
        yield c


async def test_an_enqueue_whose_reply_is_lost_is_answered_created_once(
    producer: Client, client: Client, lossy: ReplyDroppingProxy
) -> None:
    queue = producer.settings.queue_name
    handles = []
    for i in range(JOBS):
        lossy.drop_replies(b"EVALSHA")
        handles.append(await producer.enqueue("add", {"a": i, "b": 0}, job_id=f"given-{i}" if i % 2 else None))
        assert lossy.armed == 0  # the first send ran in Redis, and its reply was lost
    assert lossy.dropped == JOBS
    assert [h.created for h in handles] == [True] * JOBS  # not False: nothing was there before this call
    assert sorted(m.decode() for m in await client.redis.zrange(queue, 0, -1)) == sorted(h.job_id for h in handles)
    lossy.drop_replies(b"EVALSHA")
    batch = await producer.enqueue_many([JobRequest("add", {"a": i, "b": 0}) for i in range(5)])
    assert [h.created for h in batch] == [True] * 5
    assert await client.redis.zcard(queue) == JOBS + 5
    again = await producer.enqueue("add", {"a": 1, "b": 0}, job_id="given-1")  # a new call: the job is there
    assert not again.created


async def test_jobs_whose_enqueue_reply_is_lost_run_once(
    producer: Client, lossy: ReplyDroppingProxy, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker()  # fast enough to run a job before redis-py sends its enqueue again
    ids = []
    for i in range(10):
        lossy.drop_replies(b"EVALSHA")
        handle = await producer.enqueue("add", {"a": i, "b": 0})
        assert handle.created
        assert (await handle.result(timeout_s=20)).total == i
        ids.append(handle.job_id)
    assert await producer.redis.zcard(producer.settings.queue_name) == 0  # no second copy waits
    deadline = time.monotonic() + 20
    while worker.log().count(" succeeded") < len(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    log = worker.log()
    assert [log.count(f"job {job_id} ") for job_id in ids] == [1] * len(ids), log
