"""The table of script cases (tests/script_cases.py) on the session's real redis-server: each case on a database of
its own on that server (which the session started), emptied before the case."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.script_cases import CASES, Case, check
from worker.process.embedded import EmbeddedRedis

pytestmark = pytest.mark.integration

#: The database the cases use on the session's server (the other tests use database 0).
CASES_DB = 7


@pytest.fixture
async def real_redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_server.url, db=CASES_DB)
    await redis.flushdb()
    yield redis
    await redis.flushdb()
    await redis.aclose()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_script_cases_on_a_real_redis_server(real_redis: Redis, case: Case) -> None:
    await check(real_redis, case)
