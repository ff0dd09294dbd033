"""Integration harness: worker subprocesses started through the CLI and stopped by pid.

The fixtures (the session's redis-server, a queue per test, ``start_worker``) live in
tests/integration/conftest.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from worker.process.processes import stop_process
from worker.settings import JobqSettings

ROOT = Path(__file__).resolve().parents[2]
JOBQ = str(Path(sys.executable).parent / "jobq")
READY_TIMEOUT_S = 15.0


class WorkerProcess:
    """A worker subprocess started through the CLI; stopped by its pid."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, *, cwd: Path = ROOT) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

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


#: The ``start_worker`` fixture: ``start_worker(argv=None, *, ready=True, **extra_env)``.
StartWorker = Callable[..., WorkerProcess]


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
