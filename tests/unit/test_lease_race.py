"""A lease renewal that runs just after its job's end was written (and the lease removed): the job is not
taken for lost, its task is not cancelled, and its outcome is counted and logged like any other."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from arq.connections import ArqRedis

from tests.harness import reply as awaited
from tests.unit.harness import Clock
from worker.client.producer import Client
from worker.engine.arq_worker import JobqWorker
from worker.engine.assembly import build_worker
from worker.protocol.connection import codec_for
from worker.protocol.scripts import source
from worker.settings import JobqSettings
from worker.taskdef.registry import TaskRegistry

WAIT_S = 10.0


class HeldReplies(ArqRedis):
    """Runs every script, but holds back the reply of the one being watched until the test lets it go."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watched = ""
        self.ran = asyncio.Event()  # the watched script has run in Redis
        self.gate = asyncio.Event()

    def hold(self, script: str) -> None:
        self.watched = hashlib.sha1(script.encode()).hexdigest()  # Redis names scripts by SHA-1

    async def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
        reply = await awaited(super().evalsha(sha, numkeys, *args))
        if sha == self.watched:
            self.ran.set()
            await self.gate.wait()
        return reply


@pytest.fixture
async def redis() -> AsyncIterator[HeldReplies]:
    fake = fakeredis.aioredis.FakeRedis(server=fakeredis.FakeServer())
    held = HeldReplies(pool_or_conn=fake.connection_pool)
    yield held
    await held.aclose(close_connection_pool=True)


@pytest.mark.parametrize(
    ("task", "payload", "script", "counter", "line"),
    [
        ("add", {"a": 1, "b": 2}, source("finish_many"), "succeeded", "succeeded"),
        ("flaky", {"failures": 1}, source("retry"), "retried", "retrying"),
        ("permanent", {"note": "no"}, source("dead_letter"), "failed", "dead_lettered"),
    ],
)
async def test_a_renewal_right_after_the_end_is_written_does_not_lose_the_job(
    redis: HeldReplies,
    make_settings: Any,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    task: str,
    payload: dict[str, Any],
    script: str,
    counter: str,
    line: str,
) -> None:
    settings: JobqSettings = make_settings()
    codec = codec_for(settings)
    redis.job_serializer, redis.job_deserializer = codec.dumps, codec.loads
    registry = TaskRegistry.from_modules(settings.task_modules)
    client = Client(settings, registry=registry, redis=redis, clock=clock)
    worker: JobqWorker = build_worker(settings, registry, redis, handle_signals=False, clock=clock, draw=lambda: 1.0)
    handle = await client.enqueue(task, payload)
    redis.hold(script)
    with caplog.at_level(logging.INFO):
        assert await worker.run_cycle() == 1
        await asyncio.wait_for(redis.ran.wait(), WAIT_S)  # the end is in Redis (the lease is gone); no reply yet
        await worker.renew_leases()
        redis.gate.set()
        await asyncio.wait_for(asyncio.gather(*worker.tasks.values()), WAIT_S)
    assert "was lost" not in caplog.text
    assert f"{handle.job_id} {task} try 1/" in caplog.text
    assert f" {line} in " in caplog.text
    assert getattr(worker.state, counter) == 1
    assert worker.leases.held == {}
