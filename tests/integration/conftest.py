"""Integration harness: one real redis-server per session, worker subprocesses stopped by pid."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis

from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis
from worker.process.processes import stop_process
from worker.settings import JobqSettings

ROOT = Path(__file__).resolve().parents[2]
JOBQ = str(Path(sys.executable).parent / "jobq")
READY_TIMEOUT_S = 15.0


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


class WorkerProcess:
    """A worker subprocess started through the CLI; stopped by its pid."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, redis_url: str, queue_name: str) -> None:
        """Wait for the worker's first heartbeat (written as its loop starts)."""
        r = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + READY_TIMEOUT_S
        try:
            while not r.exists(f"jobq:worker:{socket.gethostname()}:{self.proc.pid}"):
                if self.proc.poll() is not None:
                    raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"worker not ready after {READY_TIMEOUT_S}s:\n{self.log()}")
                time.sleep(0.02)
        finally:
            r.close()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def subprocess_env(settings: JobqSettings, **extra: str) -> dict[str, str]:
    """The environment of a child process configured like ``settings`` (plus ``extra``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    env.update(
        PYTHONPATH=str(ROOT),
        JOBQ_REDIS_URL=settings.redis_url,
        JOBQ_QUEUE_NAME=settings.queue_name,
        JOBQ_TASK_MODULES=",".join(settings.task_modules),
        JOBQ_POLL_DELAY_S=str(settings.poll_delay_s),
        JOBQ_RETRY_BACKOFF_BASE_S=str(settings.retry_backoff_base_s),
        JOBQ_RETRY_BACKOFF_MAX_S=str(settings.retry_backoff_max_s),
    )
    env.update(extra)
    return env


@pytest.fixture
def start_worker(settings: JobqSettings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
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
