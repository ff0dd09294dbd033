"""`jobq check`, HTTP probes, and `jobq worker --processes N` with real processes.

Every wait is on a condition with a generous bound. A check that must pass is given a generous
`--max-age`: a worker starved of CPU for a moment is late with its beat, which is not what these tests
are about (a worker that stops beating loses its key within three heartbeats whatever the limit).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.harness import sync_reply
from tests.integration.harness import JOBQ, ROOT, StartWorker, subprocess_env
from tests.integration.proxy import PausableProxy
from worker.process.embedded import EmbeddedRedis, free_port
from worker.protocol.keys import supervisor_key, worker_key
from worker.settings import JobqSettings

HOST = socket.gethostname()
FAST_BEAT = {"JOBQ_HEALTH_INTERVAL_S": "0.3"}
LENIENT = ("--max-age", "30")  # for a check that must pass: a beat late under load is not a failure


def check(settings: JobqSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(settings, **FAST_BEAT)
    return subprocess.run([JOBQ, "check", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)


def passes(settings: JobqSettings, *args: str) -> bool:
    return check(settings, *args, *LENIENT).returncode == 0


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
    live = check(settings, "--worker-id", f"{HOST}:{worker.pid}", *LENIENT)
    assert live.returncode == 0, live.stdout + live.stderr
    assert "healthy" in live.stdout
    assert passes(settings)  # this host's workers on this queue
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
    await eventually(lambda: http_status(ready) == 200, 20, "readiness")
    assert http_status(f"http://127.0.0.1:{port}/livez") == 200
    assert passes(settings, "--worker-id", worker_id)
    proxy.pause()  # half-open: no resets, no bytes
    await eventually(lambda: check(settings, "--worker-id", worker_id).returncode == 1, 20, "check to fail")
    await eventually(lambda: http_status(ready) == 503, 20, "readiness to fail")
    assert worker.proc.poll() is None  # unhealthy, not dead
    proxy.resume()
    await eventually(lambda: passes(settings, "--worker-id", worker_id), 30, "recovery")
    await eventually(lambda: http_status(ready) == 200, 30, "readiness to return")


@pytest.mark.timeout(180)
async def test_supervisor_restarts_a_dead_worker_and_stops_them_all(settings: JobqSettings) -> None:
    env = subprocess_env(settings, **FAST_BEAT)
    supervisor = subprocess.Popen([JOBQ, "worker", "--processes", "2"], env=env, cwd=ROOT)
    r = redis.Redis.from_url(settings.redis_url)

    def workers() -> list[int]:
        pids = [int(m.decode().rsplit(":", 1)[1]) for m in sync_reply(r.zrange("jobq:workers", 0, -1))]
        return [pid for pid in pids if _alive(pid) and _child_of(pid, supervisor.pid)]

    try:
        await eventually(lambda: len(workers()) == 2, 45, "two workers")
        first, second = workers()
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: len(workers()) == 2 and first not in workers(), 45, "a replacement worker")
        assert second in workers()
        # The killed worker's key may outlive it for a few beats; its supervisor has replaced it, so it does not count.
        await eventually(lambda: passes(settings), 45, "the host's check to pass with the replacement")
        last = workers()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        assert not any(_alive(pid) for pid in last)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        r.close()


# Starts a real supervisor of two `jobq worker` processes whose second one reaches Redis through its own
# proxy (set in PROXIED_REDIS_URL): a router sets that worker's URL and execs `jobq worker` in its place, so
# the pid, heartbeat and supervision are the worker's own.
SUPERVISE_WITH_A_PROXIED_WORKER = r"""
import sys
from worker.process.supervisor import Supervisor

route = (
    "import os, sys\n"
    "from worker.process.supervisor import supervised_slot\n"
    "slot = supervised_slot()\n"
    "if slot is not None and slot.index == 1:\n"
    "    os.environ['JOBQ_REDIS_URL'] = os.environ['PROXIED_REDIS_URL']\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)
raise SystemExit(Supervisor(2, argv=[sys.executable, "-c", route, sys.argv[1], "worker"]).run())
"""


@pytest.mark.timeout(240)
async def test_host_check_fails_by_name_while_one_supervised_worker_is_cut_off(
    settings: JobqSettings, proxy: PausableProxy, tmp_path: object
) -> None:
    env = subprocess_env(
        settings,
        JOBQ_HEALTH_INTERVAL_S="0.5",
        JOBQ_REDIS_SOCKET_TIMEOUT_S="1",
        PROXIED_REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
    )
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISE_WITH_A_PROXIED_WORKER, JOBQ], env=env, cwd=ROOT)
    r = redis.Redis.from_url(settings.redis_url)

    def host_check() -> dict[str, str]:
        """This host's workers, each with its line of `jobq check` (and "exit" with its exit code)."""
        out = check(settings, *LENIENT)
        lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
        return {**lines, "exit": str(out.returncode)}

    def both_healthy() -> bool:
        found = host_check()
        return found["exit"] == "0" and sum(line.startswith("healthy") for line in found.values()) == 2

    try:
        await eventually(both_healthy, 60, "the host's check to pass for both workers")
        workers = [w for w in host_check() if w != "exit"]
        proxy.pause()  # the second worker's network goes silent: no resets, no bytes
        # Its heartbeat runs out (three beats) while the other worker keeps beating: the check names it.
        await eventually(
            lambda: sum(sync_reply(r.exists(worker_key(w))) for w in workers) == 1,
            60,
            "one worker's heartbeat to run out",
        )
        (cut_off,) = [w for w in workers if not r.exists(worker_key(w))]
        (other,) = [w for w in workers if w != cut_off]
        failed = host_check()
        assert failed["exit"] == "1", failed
        assert failed[cut_off].startswith("UNHEALTHY"), failed
        assert "no heartbeat" in failed[cut_off], failed
        assert failed[other].startswith("healthy"), failed
        proxied = r.hget(supervisor_key(f"{HOST}:{supervisor.pid}"), "1")
        # redis-py types HGET's reply str; without decode_responses it is bytes
        assert proxied == cut_off.encode()  # type: ignore[comparison-overlap]
        assert supervisor.poll() is None

        proxy.resume()
        await eventually(both_healthy, 60, "the host's check to pass again once the network heals")
        assert cut_off in host_check()  # the same worker recovered: nothing was restarted
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        r.close()


def _alive(pid: int) -> bool:
    """The process runs (a zombie, or a pid already reaped, is not alive)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _child_of(pid: int, parent: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1]) == parent
    except FileNotFoundError:
        return False
