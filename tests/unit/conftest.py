"""Unit-tier fixtures: fakeredis, an injected clock, harnesses (the helpers themselves are in tests/unit/harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import arq.connections
import arq.jobs
import arq.utils
import arq.worker
import fakeredis
import pytest
from arq.connections import ArqRedis

from tests.unit.harness import Clock, Harness
from worker.client.producer import Client
from worker.engine.assembly import build_worker
from worker.protocol.connection import codec_for
from worker.settings import JobqSettings
from worker.taskdef.registry import TaskRegistry


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    # arq reads the time through these module globals when enqueueing, claiming, deferring and timing.
    for module in (arq.worker, arq.jobs, arq.connections, arq.utils):
        monkeypatch.setattr(module, "timestamp_ms", c.ms)
    return c


@pytest.fixture
async def fake_redis() -> AsyncIterator[ArqRedis]:
    server = fakeredis.FakeServer()
    fake = fakeredis.aioredis.FakeRedis(server=server)
    redis = ArqRedis(pool_or_conn=fake.connection_pool)
    yield redis
    await redis.aclose(close_connection_pool=True)


@pytest.fixture
async def make_harness(
    make_settings: Callable[..., JobqSettings], fake_redis: ArqRedis, clock: Clock
) -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**overrides: Any) -> Harness:
        settings = make_settings(**overrides)
        codec = codec_for(settings)
        fake_redis.job_serializer = codec.dumps
        fake_redis.job_deserializer = codec.loads
        registry = TaskRegistry.from_modules(settings.task_modules)
        client = Client(settings, registry=registry, redis=fake_redis, clock=clock)
        worker = build_worker(settings, registry, fake_redis, handle_signals=False, clock=clock, draw=lambda: 1.0)
        made.append(Harness(settings, registry, fake_redis, client, worker, clock))
        return made[-1]

    yield make
    for h in made:  # resources such as HTTP sessions opened by the jobs
        if h.worker.executor.services is not None:
            await h.worker.executor.services.resources.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()
