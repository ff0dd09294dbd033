"""Batched ends of tries: fenced per job, and written even when the try that submitted one is cancelled."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis

from worker.engine.finish_batch import FinishBatcher
from worker.protocol.keys import JobKeys

QUEUE = "arq:queue"


async def _held_job(redis: ArqRedis, job_id: str, token: str) -> JobKeys:
    keys = JobKeys(job_id, QUEUE)
    await redis.set(keys.job, b"envelope")
    await redis.set(keys.in_progress, token)
    await redis.zadd(QUEUE, {job_id: 1})
    return keys


async def test_an_end_is_written_even_if_its_waiter_is_cancelled(fake_redis: ArqRedis) -> None:
    keys = await _held_job(fake_redis, "j1", "tok-1")
    batcher = FinishBatcher(fake_redis, QUEUE)
    waiting = asyncio.ensure_future(batcher.finish("j1", "tok-1", b"result", 60_000))
    await asyncio.sleep(0)  # the end is queued; its flush runs one iteration later
    waiting.cancel()
    await batcher.wait_idle()
    assert waiting.cancelled()
    assert await fake_redis.get(keys.result) == b"result"
    assert not await fake_redis.exists(keys.job, keys.in_progress)
    assert await fake_redis.zscore(QUEUE, "j1") is None


async def test_each_end_of_a_batch_is_fenced_by_its_own_token(fake_redis: ArqRedis) -> None:
    mine = await _held_job(fake_redis, "mine", "tok-a")
    theirs = await _held_job(fake_redis, "theirs", "tok-other-worker")
    batcher = FinishBatcher(fake_redis, QUEUE)
    ends = [batcher.submit("mine", "tok-a", b"r1", 60_000), batcher.submit("theirs", "tok-b", b"r2", 60_000)]
    assert await asyncio.gather(*ends) == [True, False]
    assert await fake_redis.get(mine.result) == b"r1"
    assert await fake_redis.get(theirs.result) is None
    assert await fake_redis.get(theirs.in_progress) == b"tok-other-worker"
    assert await fake_redis.zscore(QUEUE, "theirs") == 1
