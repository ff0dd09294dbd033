"""`jobq check`, HTTP probes, and `jobq worker --processes N` with real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.integration.conftest import JOBQ, ROOT, WorkerProcess, subprocess_env
from tests.integration.proxy import PausableProxy
from worker.embedded import EmbeddedRedis, free_port
from worker.settings import JobqSettings

StartWorker = Callable[..., WorkerProcess]
HOST = socket.gethostname()
FAST_BEAT = {"JOBQ_HEALTH_INTERVAL_S": "0.3"}


def check(settings: JobqSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(settings, **FAST_BEAT)
    return subprocess.run([JOBQ, "check", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def eventually(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_check_passes_for_a_live_worker_and_fails_for_a_dead_one(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    worker = start_worker(**FAST_BEAT)
    live = check(settings, "--worker-id", f"{HOST}:{worker.pid}")
    assert live.returncode == 0, live.stdout + live.stderr
    assert "healthy" in live.stdout
    assert check(settings).returncode == 0  # this host's workers on this queue
    worker.signal(signal.SIGKILL)
    await eventually(lambda: check(settings, "--worker-id", f"{HOST}:{worker.pid}").returncode == 1, 10, "staleness")


def test_check_fails_when_no_worker_ever_ran(settings: JobqSettings) -> None:
    out = check(settings)
    assert out.returncode == 1
    assert "no worker heartbeat found" in out.stderr


@pytest.fixture
def proxy(redis_server: EmbeddedRedis) -> Iterator[PausableProxy]:
    p = PausableProxy(redis_server.port)
    yield p
    p.close()


async def test_a_partitioned_worker_is_unhealthy_until_the_network_heals(
    settings: JobqSettings, start_worker: StartWorker, proxy: PausableProxy
) -> None:
    port = free_port()
    worker = start_worker(
        JOBQ_REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
        JOBQ_REDIS_SOCKET_TIMEOUT_S="1",
        JOBQ_HTTP_PORT=str(port),
        **FAST_BEAT,
    )
    worker_id = f"{HOST}:{worker.pid}"
    ready = f"http://127.0.0.1:{port}/readyz"
    await eventually(lambda: http_status(ready) == 200, 10, "readiness")
    assert http_status(f"http://127.0.0.1:{port}/livez") == 200
    assert check(settings, "--worker-id", worker_id).returncode == 0
    proxy.pause()  # half-open: no resets, no bytes
    await eventually(lambda: check(settings, "--worker-id", worker_id).returncode == 1, 15, "check to fail")
    await eventually(lambda: http_status(ready) == 503, 15, "readiness to fail")
    assert worker.proc.poll() is None  # unhealthy, not dead
    proxy.resume()
    await eventually(lambda: check(settings, "--worker-id", worker_id).returncode == 0, 20, "recovery")
    await eventually(lambda: http_status(ready) == 200, 20, "readiness to return")


async def test_supervisor_restarts_a_dead_worker_and_stops_them_all(settings: JobqSettings, tmp_path: object) -> None:
    env = subprocess_env(settings, **FAST_BEAT)
    supervisor = subprocess.Popen([JOBQ, "worker", "--processes", "2"], env=env, cwd=ROOT)
    r = redis.Redis.from_url(settings.redis_url)

    def workers() -> list[int]:
        return [int(m.decode().rsplit(":", 1)[1]) for m in r.zrange("jobq:workers", 0, -1) if _alive(m)]

    def _alive(member: bytes) -> bool:
        pid = int(member.decode().rsplit(":", 1)[1])
        return member.decode().startswith(HOST + ":") and _pid_alive(pid) and _child_of(pid, supervisor.pid)

    try:
        await eventually(lambda: len(workers()) == 2, 20, "two workers")
        first, second = workers()
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: len(workers()) == 2 and first not in workers(), 20, "a replacement worker")
        assert second in workers()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert not any(_pid_alive(pid) for pid in workers())
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        r.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split()[2] != "Z"


def _child_of(pid: int, parent: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().split()[3]) == parent
    except FileNotFoundError:
        return False
