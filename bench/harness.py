"""What every measurement needs: the systems, worker subprocesses, and Redis's command counters.

Workers are real OS processes started here and stopped by their pid (SIGTERM, then SIGKILL), on every
exit path: :func:`running_workers` is a context manager.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis

from bench.ready import READY_KEY

ROOT = Path(__file__).resolve().parents[1]
JOBQ_BIN = ROOT / ".venv" / "bin" / "jobq"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class System:
    """One of the queues under test."""

    key: str  #: "jobq", "arq", "arq_tuned" or "saq"
    label: str
    max_jobs: int  #: concurrency of one worker process outside the I/O-bound run
    producer_only: bool = False  #: only the producer is measured (no worker of it is ever started)

    @property
    def is_jobq(self) -> bool:
        return self.key == "jobq"


#: jobq's drain concurrency is 100, the same as tuned arq (jobq's own default is 10).
JOBQ = System("jobq", "jobq", 100)
ARQ = System("arq", "arq (default)", 10)
ARQ_TUNED = System("arq_tuned", "arq tuned", 100)
#: SAQ's producer (``Queue.enqueue``), the peer issue 15 measures jobq's enqueue against.
SAQ = System("saq", "SAQ", 0, producer_only=True)
SYSTEMS = (JOBQ, ARQ, ARQ_TUNED, SAQ)
#: The measurements a producer-only system takes part in.
PRODUCER_MEASUREMENTS = frozenset({"enqueue"})


def fresh_queue(system: System) -> str:
    """A queue name of its own for one measurement of one system."""
    return f"bench:{system.key}:{uuid.uuid4().hex[:8]}"


def _worker_command(
    system: System, url: str, queue: str, max_jobs: int, extra_env: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")} | (extra_env or {})
    env["PYTHONPATH"] = str(ROOT)
    if system.is_jobq:
        # jobq's defaults otherwise (log level INFO, poll delay, heartbeat interval): what production runs.
        env |= {
            "JOBQ_REDIS_URL": url,
            "JOBQ_QUEUE_NAME": queue,
            "JOBQ_TASK_MODULES": "bench.tasks",
            "JOBQ_MAX_JOBS": str(max_jobs),
        } | (extra_env or {})
        return [str(JOBQ_BIN), "worker"], env
    argv = [sys.executable, "-m", "bench.arq_worker", url, queue]
    if system.key == "arq_tuned":
        argv.append("--tuned")
    if max_jobs != system.max_jobs:
        argv += ["--max-jobs", str(max_jobs)]
    return argv, env


class Workers:
    """Worker processes of one system on one queue; their output goes to a log file each."""

    def __init__(
        self, system: System, url: str, queue: str, count: int, max_jobs: int, extra_env: dict[str, str] | None = None
    ) -> None:
        self.system = system
        self.queue = queue
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self._logdir = tempfile.TemporaryDirectory(prefix="jobq-bench-")
        argv, env = _worker_command(system, url, queue, max_jobs, extra_env)
        try:
            for i in range(count):
                log = Path(self._logdir.name) / f"worker-{i}.log"
                self.logs.append(log)
                with log.open("wb") as out:
                    self.procs.append(
                        subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
                    )
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def check_alive(self) -> None:
        """Raise, with the end of its log, if a worker process has exited."""
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.system.label} worker pid {proc.pid} exited with {proc.returncode}:\n{tail}")

    def wait_ready(self, r: redis.Redis, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until every process has set its ready key (bench.tasks / bench.arq_worker do at start-up)."""
        deadline = time.monotonic() + timeout_s
        keys = [READY_KEY.format(pid=pid) for pid in self.pids]
        while cast("int", r.exists(*keys)) < len(keys):  # a sync client: an int, not an awaitable
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.system.label} workers not ready within {timeout_s:g}s")
            time.sleep(0.02)

    def ready_times(self, r: redis.Redis) -> list[float]:
        """When each process set its ready key (time.time()); only after :meth:`wait_ready` or a finished run."""
        values = cast("list[bytes | None]", r.mget([READY_KEY.format(pid=pid) for pid in self.pids]))
        if any(v is None for v in values):
            raise RuntimeError(f"{self.system.label}: a worker never reported ready")
        return [float(v) for v in values if v is not None]

    def peak_rss_mb(self) -> list[float]:
        """``VmHWM`` (peak resident set) of each live worker process, in MB."""
        return [vm_hwm_mb(pid) for pid in self.pids]

    def log_lines(self) -> int:
        return sum(len(log.read_bytes().splitlines()) for log in self.logs if log.exists())

    def stop(self) -> None:
        """SIGTERM every process, wait for them, SIGKILL any still there after STOP_TIMEOUT_S (or on Ctrl-C)."""
        try:
            for proc in self.procs:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for proc in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            self._logdir.cleanup()


@contextlib.contextmanager
def running_workers(
    system: System, url: str, queue: str, *, count: int = 1, max_jobs: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Workers]:  # fmt: skip
    """Start ``count`` worker processes (``env``: more of their environment); they are stopped when the block
    exits, however it exits."""
    workers = Workers(system, url, queue, count, max_jobs or system.max_jobs, env)
    try:
        yield workers
    finally:
        workers.stop()


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a process, from /proc/<pid>/status, in MB (2**20 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def command_calls(r: redis.Redis) -> dict[str, int]:
    """``INFO commandstats`` as command -> calls (commands run inside Lua scripts included; INFO left out)."""
    stats = cast("dict[str, dict[str, Any]]", r.info("commandstats"))  # a sync client: a dict
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    calls.pop("info", None)
    return calls


def calls_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls per command between two :func:`command_calls` snapshots (zeros left out)."""
    delta = {name: n - before.get(name, 0) for name, n in after.items()}
    return {name: n for name, n in delta.items() if n}


def reset_redis(r: redis.Redis) -> None:
    """Empty the database between measurements (no worker is running then)."""
    r.flushdb()


class Interrupt:
    """SIGINT and SIGTERM raise KeyboardInterrupt wherever the harness is, so every finally block runs.

    Python's default SIGINT handler is replaced because ``asyncio.run`` turns it into a cancellation of
    the main task, which a library may swallow; :attr:`received` is also checked between measurements.
    """

    received = False

    @classmethod
    def install(cls) -> None:
        def handler(signum: int, frame: object) -> None:
            cls.received = True
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    @classmethod
    def check(cls) -> None:
        """Raise KeyboardInterrupt if a signal arrived and was swallowed on the way."""
        if cls.received:
            raise KeyboardInterrupt
