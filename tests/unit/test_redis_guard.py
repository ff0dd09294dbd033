"""The start-up check of Redis's eviction policy and persistence (pure judgement, and modes)."""

from __future__ import annotations

import logging

import fakeredis
import pytest

from worker.engine.redis_guard import assess, check_redis_safety
from worker.errors import SettingsError, UnsafeRedisError

SAFE_INFO = {"maxmemory_policy": "noeviction", "aof_enabled": 1}


def test_noeviction_with_aof_is_safe() -> None:
    safety = assess(SAFE_INFO, rdb_save=None)
    assert safety.safe
    assert safety.problems == []
    assert safety.unverified == []


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl", "allkeys-lfu"])
def test_any_eviction_policy_is_a_problem_naming_it(policy: str) -> None:
    safety = assess({**SAFE_INFO, "maxmemory_policy": policy}, rdb_save=None)
    assert not safety.safe
    assert len(safety.problems) == 1
    assert repr(policy) in safety.problems[0]
    assert "noeviction" in safety.problems[0]


def test_no_aof_and_no_save_points_is_persistence_off() -> None:
    safety = assess({**SAFE_INFO, "aof_enabled": 0}, rdb_save="")
    assert not safety.safe
    assert "persistence is off" in safety.problems[0]
    assert "appendonly yes" in safety.problems[0]


def test_rdb_snapshots_count_as_persistence() -> None:
    assert assess({**SAFE_INFO, "aof_enabled": 0}, rdb_save="3600 1 300 100").safe


def test_rdb_schedule_that_cannot_be_read_is_unverified_not_unsafe() -> None:
    safety = assess({**SAFE_INFO, "aof_enabled": 0}, rdb_save=None)
    assert safety.safe
    assert safety.unverified == ["RDB snapshots (AOF is off and CONFIG GET save is not allowed)"]


def test_both_problems_are_reported() -> None:
    safety = assess({"maxmemory_policy": "allkeys-lru", "aof_enabled": 0}, rdb_save="")
    assert len(safety.problems) == 2


def test_unsafe_redis_error_is_a_settings_error() -> None:
    # The CLI maps SettingsError to exit 2: a configuration to fix, not a crash to restart.
    assert issubclass(UnsafeRedisError, SettingsError)


async def test_off_mode_asks_redis_nothing() -> None:
    assert await check_redis_safety(object(), "off") is None  # an object without methods: nothing is called


@pytest.mark.parametrize("mode", ["warn", "refuse"])
async def test_redis_that_hides_its_config_is_unverified_and_never_refused(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    # fakeredis, like an ACL user without INFO, refuses INFO: the worker starts and says what it could not check.
    redis = fakeredis.FakeAsyncRedis()
    with caplog.at_level(logging.WARNING, logger="jobq.redis"):
        safety = await check_redis_safety(redis, mode)  # type: ignore[arg-type]
    await redis.aclose()
    assert safety is not None
    assert safety.safe
    assert safety.unverified
    assert "could not check Redis's eviction policy and persistence" in caplog.text
