"""Scripts whose reply is lost are sent again (redis-py retries on a connection error): the second send
reports what the first one did, and does nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from arq.connections import ArqRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.harness import reply
from tests.integration.harness import WorkerProcess
from tests.integration.lossy_proxy import ReplyDroppingProxy
from worker.client.producer import Client
from worker.engine.finish import DeadLetterBounds, TryRecorder
from worker.engine.leases import Claim, Leases
from worker.engine.limiter import Gate
from worker.process.embedded import EmbeddedRedis
from worker.protocol.connection import close_redis, create_redis
from worker.protocol.keys import JobKeys, dead_letter_store, waiting_key
from worker.protocol.scripts import source
from worker.settings import JobqSettings

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return round(time.time() * 1000)


@pytest.fixture
def lossy(redis_server: EmbeddedRedis) -> Iterator[ReplyDroppingProxy]:
    proxy = ReplyDroppingProxy(redis_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
async def via_proxy(settings: JobqSettings, lossy: ReplyDroppingProxy) -> AsyncIterator[ArqRedis]:
    redis = create_redis(settings.model_copy(update={"redis_url": lossy.url}))
    for name in ("claim", "finish_many", "retry", "park", "dead_letter"):
        await redis.script_load(source(name))  # loaded: the first lost reply is the script's own, not a NOSCRIPT
    yield redis
    await close_redis(redis)


async def _enqueue(client: Client, count: int) -> list[str]:
    return [(await client.enqueue("add", {"a": i, "b": 1})).job_id for i in range(count)]


async def _assert_leased_once(client: Client, claims: list[Claim], ids: list[str]) -> None:
    assert sorted(c.job_id for c in claims) == sorted(ids)
    for c in claims:
        keys = JobKeys(c.job_id, client.settings.queue_name)
        assert await client.redis.get(keys.in_progress) == c.token.encode()
        assert await client.redis.get(keys.retry) == b"1"  # one start, although the claim ran twice
        assert c.started is not None
        assert (c.started.started, c.started.interruptions) == (1, 0)


async def test_a_claim_whose_reply_is_lost_gets_its_jobs_from_the_second_send(
    client: Client, via_proxy: ArqRedis, lossy: ReplyDroppingProxy
) -> None:
    ids = await _enqueue(client, 5)
    leases = Leases(via_proxy, client.settings.queue_name, "lossy", 30)
    lossy.drop_replies(b"EVALSHA")
    claims = await leases.claim(now_ms(), 10, 100)
    assert lossy.dropped == 1
    await _assert_leased_once(client, claims, ids)
    assert set(leases.held) == set(ids)
    assert await leases.claim(now_ms(), 10, 100) == []  # and nothing is claimed twice


async def test_a_claim_lost_past_the_connection_retries_is_sent_again_by_the_next_claim(
    client: Client, via_proxy: ArqRedis, lossy: ReplyDroppingProxy
) -> None:
    leases = Leases(via_proxy, client.settings.queue_name, "lossy", 30)
    ids = await _enqueue(client, 3)
    lossy.drop_replies(b"EVALSHA", times=4)  # the first send and redis-py's three retries
    with pytest.raises(RedisConnectionError):
        await leases.claim(now_ms(), 10, 100)
    assert lossy.dropped == 4
    more = await _enqueue(client, 2)  # due now too, but the lost call is what the next claim sends
    claims = await leases.claim(now_ms(), 10, 100)
    await _assert_leased_once(client, claims, ids)
    claims = await leases.claim(now_ms(), 10, 100)
    await _assert_leased_once(client, claims, more)


async def _claimed(client: Client, count: int) -> list[Claim]:
    await _enqueue(client, count)
    return await Leases(client.redis, client.settings.queue_name, "direct", 30).claim(now_ms(), count, 100)


def _recorder(redis: ArqRedis, queue: str) -> TryRecorder:
    return TryRecorder(redis, queue, DeadLetterBounds(max_entries=100, retention_ms=3_600_000), retry_deadline_s=5)


@pytest.mark.parametrize("result_ttl_ms", [60_000, 0])
async def test_a_finish_whose_reply_is_lost_is_reported_written(
    client: Client, via_proxy: ArqRedis, lossy: ReplyDroppingProxy, result_ttl_ms: int
) -> None:
    queue = client.settings.queue_name
    (claim,) = await _claimed(client, 1)
    recorder = _recorder(via_proxy, queue)
    keys = recorder.keys(claim.job_id)
    lossy.drop_replies(b"EVALSHA")
    await recorder.finish(keys, claim.token, b"the result", result_ttl_ms)  # not LeaseLost
    assert lossy.dropped == 1
    assert await client.redis.get(keys.result) == (b"the result" if result_ttl_ms else None)
    assert await client.redis.exists(keys.job, keys.in_progress, keys.retry) == 0


async def test_a_retry_whose_reply_is_lost_counts_one_failure(
    client: Client, via_proxy: ArqRedis, lossy: ReplyDroppingProxy
) -> None:
    (claim,) = await _claimed(client, 1)
    recorder = _recorder(via_proxy, client.settings.queue_name)
    keys = recorder.keys(claim.job_id)
    lossy.drop_replies(b"EVALSHA")
    due = now_ms() + 60_000
    await recorder.retry(keys, claim.token, due, b'{"e":"boom","at":1}', 3_600_000)
    assert lossy.dropped == 1
    failures = await reply(client.redis.hget(keys.meta, "failures"))
    assert failures == b"1"  # type: ignore[comparison-overlap]  # redis-py types it str; it is bytes
    assert await client.redis.zscore(keys.queue, claim.job_id) == due
    assert await client.redis.exists(keys.in_progress) == 0


async def test_a_parking_whose_reply_is_lost_gives_the_start_back_once(
    client: Client, via_proxy: ArqRedis, lossy: ReplyDroppingProxy
) -> None:
    (claim,) = await _claimed(client, 1)
    recorder = _recorder(via_proxy, client.settings.queue_name)
    keys = recorder.keys(claim.job_id)
    gate = Gate.local("add")
    lossy.drop_replies(b"EVALSHA")
    assert await recorder.park(keys, claim.token, claim.due_ms, gate, now_ms() + 5000) is True  # parked, once
    assert lossy.dropped == 1
    assert await client.redis.get(keys.retry) == b"0"
    assert await client.redis.zrange(waiting_key(keys.queue, gate.name), 0, -1) == [claim.job_id.encode()]


async def test_a_dead_letter_whose_reply_is_lost_is_written_once(
    client: Client, via_proxy: ArqRedis, lossy: ReplyDroppingProxy
) -> None:
    queue = client.settings.queue_name
    (claim,) = await _claimed(client, 1)
    recorder = _recorder(via_proxy, queue)
    keys = recorder.keys(claim.job_id)
    lossy.drop_replies(b"EVALSHA")
    assert await recorder.dead_letter(keys, claim.token, b"failed", 60_000, b'{"entry":1}', now_ms()) == 0
    assert lossy.dropped == 1
    assert await reply(client.redis.hgetall(dead_letter_store(queue))) == {claim.job_id.encode(): b'{"entry":1}'}
    assert await client.redis.exists(keys.job, keys.in_progress) == 0


async def test_a_worker_whose_script_replies_are_lost_runs_each_job_once_and_counts_it(
    client: Client, lossy: ReplyDroppingProxy, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker(JOBQ_REDIS_URL=lossy.url)
    lossy.drop_replies(b"EVALSHA", times=20, every=2)  # claims, finishes, heartbeats alike
    handles = [await client.enqueue("add", {"a": i, "b": 1}) for i in range(40)]
    for handle in handles:
        result = await handle.wait(timeout_s=30)
        assert (result.success, result.tries) == (True, 1)
    assert lossy.dropped > 0
    assert worker.proc.poll() is None
    deadline = time.monotonic() + 15  # the log lines of the last jobs may still be on their way
    while (log := worker.log()).count(" add try 1/5 succeeded") < len(handles) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert "lease_lost" not in log
    assert "was lost" not in log
    for handle in handles:
        assert log.count(f"job {handle.job_id} add try 1/") == 1  # one try, its success logged
