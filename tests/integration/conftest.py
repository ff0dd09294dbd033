"""Integration fixtures: one real redis-server per session, a queue per test, worker subprocesses stopped by pid
(the helpers themselves are in tests/integration/harness.py)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import JOBQ, StartWorker, WorkerProcess, subprocess_env
from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis
from worker.settings import JobqSettings


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A redis-server of our own on a free loopback port (never a server we did not start)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; `make test` installs the Debian package redis-server")
    with EmbeddedRedis.start("redis-server") as server:
        yield server


@pytest.fixture
def queue_name() -> str:
    """A queue of this test's own, so tests never see each other's jobs."""
    return f"test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(redis_server: EmbeddedRedis, queue_name: str, make_settings: Callable[..., JobqSettings]) -> JobqSettings:
    return make_settings(redis_url=redis_server.url, queue_name=queue_name)


@pytest.fixture
async def client(settings: JobqSettings) -> AsyncIterator[Client]:
    async with Client(settings) as c:
        yield c


@pytest.fixture
def start_worker(settings: JobqSettings, tmp_path: Path) -> Iterator[StartWorker]:
    """Start ``jobq worker`` (or another argv) in a subprocess and wait until it polls the queue."""
    started: list[WorkerProcess] = []

    def start(argv: list[str] | None = None, *, ready: bool = True, **extra_env: str) -> WorkerProcess:
        proc = WorkerProcess(
            argv or [JOBQ, "worker"], subprocess_env(settings, **extra_env), tmp_path / f"worker-{len(started)}.log"
        )
        started.append(proc)
        if ready:
            proc.wait_ready(settings.redis_url, settings.queue_name)
        return proc

    yield start
    for proc in started:
        proc.stop()
