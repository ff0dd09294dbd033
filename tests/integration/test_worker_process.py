"""`jobq worker` in a subprocess, fed by producers in other processes, stopped by signals."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.harness import reply
from tests.integration.harness import JOBQ, ROOT, StartWorker, WorkerProcess, subprocess_env
from tests.integration.servers import ServerProcess, start_server
from worker import InvalidPayload, JobFailed, JobRequest, JobStatus, SyncClient
from worker.client.producer import Client
from worker.settings import JobqSettings


async def test_cli_worker_runs_jobs_enqueued_by_this_process(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    handles = await client.enqueue_many([JobRequest("add", {"a": i, "b": i}) for i in range(50)])
    totals = [(await h.wait(timeout_s=10)).unwrap().total for h in handles]
    assert totals == [2 * i for i in range(50)]


async def test_python_dash_m_worker_runs_a_worker(client: Client, start_worker: StartWorker) -> None:
    start_worker([sys.executable, "-m", "worker"])
    handle = await client.enqueue("add", {"a": 1, "b": 2})
    assert (await handle.result(timeout_s=10)).total == 3


def test_sync_producer_in_another_process(settings: JobqSettings, start_worker: StartWorker) -> None:
    start_worker()
    producer = textwrap.dedent(
        """
        from worker import SyncClient, load_settings
        with SyncClient(load_settings()) as client:
            handle = client.enqueue("add", {"a": 20, "b": 22})
            print(handle.result(timeout_s=10).total)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", producer], env=subprocess_env(settings), cwd=ROOT, capture_output=True, timeout=30
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == "42"


async def test_failing_job_is_retried_until_it_succeeds(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    handle = await client.enqueue("flaky_default", {"failures": 2})
    result = await handle.wait(timeout_s=10)
    assert (result.success, result.value, result.tries) == (True, 3, 3)


async def test_timeout_ends_the_try_on_the_real_worker(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    result = await (await client.enqueue("slow", {"seconds": 1})).wait(timeout_s=10)
    assert result.error is not None
    assert result.error.error_type == "worker.errors.JobTimeout"


async def test_deferred_job_does_not_start_before_its_time(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    handle = await client.enqueue("add", {"a": 1, "b": 1}, defer_by=0.5)
    assert (await handle.status()).status == JobStatus.DEFERRED
    result = await handle.wait(timeout_s=10)
    assert (result.started_at - result.enqueued_at).total_seconds() >= 0.5


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_the_worker_cleanly(start_worker: StartWorker, signum: int) -> None:
    worker = start_worker()
    worker.signal(signum)
    assert worker.wait(timeout=30) == 0
    assert "Traceback" not in worker.log()


def wait_for_line(worker: WorkerProcess, line: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in worker.log():
        assert worker.proc.poll() is None, f"worker exited with {worker.proc.returncode}:\n{worker.log()}"
        assert time.monotonic() < deadline, f"no {line!r} after {timeout_s}s:\n{worker.log()}"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_start_up_stops_the_worker_cleanly(start_worker: StartWorker, signum: int) -> None:
    from worker.process.embedded import free_port

    # Nothing listens there: the worker is still in its start-up (retrying Redis) when the signal comes.
    worker = start_worker(ready=False, JOBQ_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    wait_for_line(worker, "redis not reachable")
    worker.signal(signum)
    assert worker.wait(timeout=30) == 0
    assert f"worker stopping on {signal.Signals(signum).name} during start-up" in worker.log()
    assert "Traceback" not in worker.log()


async def test_an_abandoned_task_does_not_keep_a_stopped_worker_alive(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker()
    result = await (await client.enqueue("ignore_cancel", {"seconds": 600})).wait(timeout_s=30)
    assert result.error is not None  # timed out; the task ignored its cancellation and was abandoned
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert "1 tasks ignored their cancellation" in worker.log()


@pytest.fixture
def frozen_redis(tmp_path: Path) -> Iterator[ServerProcess]:
    """A redis-server of this test's own, to be frozen with SIGSTOP (thawed and stopped afterwards)."""
    server = start_server(["--port", "{port}"], tmp_path, lambda port: redis.Redis(port=port).ping())
    yield server
    server.proc.send_signal(signal.SIGCONT)
    server.stop()


@pytest.mark.parametrize("ending", ["third signal", "watchdog"])
async def test_a_stop_stuck_on_a_frozen_redis_ends_after_the_second_signal(
    settings: JobqSettings, start_worker: StartWorker, frozen_redis: ServerProcess, ending: str
) -> None:
    url = f"redis://127.0.0.1:{frozen_redis.port}/0"
    worker = start_worker(
        ready=False,
        JOBQ_REDIS_URL=url,
        JOBQ_SHUTDOWN_GRACE_S="0.2",
        JOBQ_CANCEL_GRACE_S="0.05",
        JOBQ_REDIS_SOCKET_TIMEOUT_S="120",
    )
    worker.wait_ready(url, settings.queue_name)
    run = uuid.uuid4().hex[:8]
    async with Client(settings.model_copy(update={"redis_url": url})) as client:
        await client.enqueue("tracked", {"run": run, "seconds": 0, "hold": "never"})
        deadline = time.monotonic() + 30
        while not await reply(client.redis.llen(f"probe:{run}:starts")):
            assert time.monotonic() < deadline, worker.log()
            await asyncio.sleep(0.02)
    frozen_redis.proc.send_signal(signal.SIGSTOP)  # the job's hand-back (and every other write) now hangs
    worker.signal(signal.SIGTERM)
    wait_for_line(worker, "grace period over: 1 jobs go back to the queue")
    worker.signal(signal.SIGTERM)
    wait_for_line(worker, "SIGTERM again: stopping now")
    if ending == "third signal":
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 128 + signal.SIGTERM
        assert "SIGTERM a third time: exiting now (exit 143)" in worker.log()
    else:
        assert worker.wait(timeout=45) == 128 + signal.SIGTERM  # 10s + JOBQ_CANCEL_GRACE_S after the second
        assert "still stopping 10s after SIGTERM again: exiting now (exit 143)" in worker.log()


def test_invalid_settings_stop_start_up_naming_the_variable(settings: JobqSettings) -> None:
    env = subprocess_env(settings, JOBQ_MAX_JOBS="many")
    out = subprocess.run([JOBQ, "worker"], env=env, capture_output=True, timeout=30)
    assert out.returncode == 2
    assert "JOBQ_MAX_JOBS='many'" in out.stderr.decode()
    assert "Traceback" not in out.stderr.decode()


def test_missing_task_module_stops_start_up(settings: JobqSettings) -> None:
    env = subprocess_env(settings, JOBQ_TASK_MODULES="no.such.module")
    out = subprocess.run([JOBQ, "worker"], env=env, capture_output=True, timeout=30)
    assert out.returncode == 2
    assert "cannot import task module 'no.such.module'" in out.stderr.decode()


def test_unreachable_redis_is_an_error_not_a_hang(settings: JobqSettings) -> None:
    from worker.process.embedded import free_port

    env = subprocess_env(settings, JOBQ_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    out = subprocess.run([JOBQ, "worker"], env=env, capture_output=True, timeout=60)
    assert out.returncode == 1
    assert "ConnectionError" in out.stderr.decode()


def test_secrets_stay_out_of_the_worker_log(settings: JobqSettings, start_worker: StartWorker) -> None:
    worker = start_worker(JOBQ_SIGNING_KEY="canary-signing-key", JOBQ_LOG_LEVEL="DEBUG")
    worker.stop()
    assert "canary-signing-key" not in worker.log()


def test_sync_client_in_this_process(settings: JobqSettings, start_worker: StartWorker) -> None:
    start_worker()
    with SyncClient(settings) as client:
        with pytest.raises(InvalidPayload) as info:
            client.enqueue("add", {"a": 1, "b": "two"})
        assert info.value.fields == ["b"]
        handle = client.enqueue("add", {"a": 1, "b": 2}, job_id="sync-1")
        assert not client.enqueue("add", {"a": 1, "b": 2}, job_id="sync-1").created
        assert handle.result(timeout_s=10).total == 3
        assert client.job("sync-1").status().status == JobStatus.SUCCEEDED
        failing = client.enqueue("slow", {"seconds": 1})
        with pytest.raises(JobFailed, match="exceeded its timeout"):
            failing.result(timeout_s=10)
        many = client.enqueue_many([JobRequest("add", {"a": i, "b": 0}) for i in range(5)])
        assert [h.wait(timeout_s=10).unwrap().total for h in many] == list(range(5))
