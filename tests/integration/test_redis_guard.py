"""`jobq worker` checks the Redis it starts on: eviction policy and persistence (real redis-servers)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.harness import JOBQ, subprocess_env
from worker.process.embedded import EmbeddedRedis
from worker.settings import JobqSettings


@pytest.fixture(scope="module")
def evicting_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server with an eviction policy and no persistence (the embedded default has neither AOF nor RDB)."""
    with EmbeddedRedis.start("redis-server", extra_args=("--maxmemory-policy", "allkeys-lru")) as server:
        yield server


def run_burst_worker(settings: JobqSettings, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [JOBQ, "worker", "--burst"]
    return subprocess.run(
        argv, env=subprocess_env(settings, JOBQ_REDIS_URL=url, **env), capture_output=True, text=True, timeout=30
    )


def test_refuse_mode_exits_2_naming_each_unsafe_setting(settings: JobqSettings, evicting_redis: EmbeddedRedis) -> None:
    out = run_burst_worker(settings, evicting_redis.url, JOBQ_REDIS_SAFETY_CHECK="refuse")
    assert out.returncode == 2, out.stderr
    assert "JOBQ_REDIS_SAFETY_CHECK=refuse" in out.stderr
    assert "maxmemory-policy is 'allkeys-lru'" in out.stderr
    assert "persistence is off" in out.stderr
    assert "Traceback" not in out.stderr


def test_warn_mode_logs_and_starts(settings: JobqSettings, evicting_redis: EmbeddedRedis) -> None:
    out = run_burst_worker(settings, evicting_redis.url)  # warn is the default
    assert out.returncode == 0, out.stderr
    assert "unsafe Redis for a job queue: maxmemory-policy is 'allkeys-lru'" in out.stderr
    assert "unsafe Redis for a job queue: persistence is off" in out.stderr


def test_off_mode_says_nothing(settings: JobqSettings, evicting_redis: EmbeddedRedis) -> None:
    out = run_burst_worker(settings, evicting_redis.url, JOBQ_REDIS_SAFETY_CHECK="off")
    assert out.returncode == 0, out.stderr
    assert "unsafe Redis" not in out.stderr


def test_a_safe_redis_starts_silently_in_refuse_mode(settings: JobqSettings) -> None:
    with EmbeddedRedis.start("redis-server", extra_args=("--appendonly", "yes")) as safe:
        out = run_burst_worker(settings, safe.url, JOBQ_REDIS_SAFETY_CHECK="refuse")
    assert out.returncode == 0, out.stderr
    assert "unsafe Redis" not in out.stderr
    assert "could not check" not in out.stderr
