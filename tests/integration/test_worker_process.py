"""`jobq worker` in a subprocess, fed by producers in other processes, stopped by signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from tests.integration.conftest import JOBQ, ROOT, WorkerProcess, subprocess_env
from worker import InvalidPayload, JobFailed, JobRequest, JobStatus, SyncClient
from worker.client import Client
from worker.settings import JobqSettings

StartWorker = Callable[..., WorkerProcess]


async def test_cli_worker_runs_jobs_enqueued_by_this_process(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    handles = await client.enqueue_many([JobRequest("add", {"a": i, "b": i}) for i in range(50)])
    totals = [(await h.wait(timeout=10)).value.total for h in handles]
    assert totals == [2 * i for i in range(50)]


async def test_python_dash_m_worker_runs_a_worker(client: Client, start_worker: StartWorker) -> None:
    start_worker([sys.executable, "-m", "worker"])
    handle = await client.enqueue("add", {"a": 1, "b": 2})
    assert (await handle.result(timeout=10)).total == 3


def test_sync_producer_in_another_process(settings: JobqSettings, start_worker: StartWorker) -> None:
    start_worker()
    producer = textwrap.dedent(
        """
        from worker import SyncClient, load_settings
        with SyncClient(load_settings()) as client:
            handle = client.enqueue("add", {"a": 20, "b": 22})
            print(handle.result(timeout=10).total)
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
    result = await handle.wait(timeout=10)
    assert (result.success, result.value, result.tries) == (True, 3, 3)


async def test_timeout_ends_the_try_on_the_real_worker(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    result = await (await client.enqueue("slow", {"seconds": 1})).wait(timeout=10)
    assert result.error is not None
    assert result.error.error_type == "worker.errors.JobTimeout"


async def test_deferred_job_does_not_start_before_its_time(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    handle = await client.enqueue("add", {"a": 1, "b": 1}, defer_by=0.5)
    assert (await handle.status()).status == JobStatus.DEFERRED
    result = await handle.wait(timeout=10)
    assert (result.started_at - result.enqueued_at).total_seconds() >= 0.5


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_the_worker_cleanly(start_worker: StartWorker, signum: int) -> None:
    worker = start_worker()
    worker.signal(signum)
    assert worker.wait(timeout=10) == 0
    assert "Traceback" not in worker.log()


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
    from worker.embedded import free_port

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
        assert handle.result(timeout=10).total == 3
        assert client.job("sync-1").status().status == JobStatus.SUCCEEDED
        failing = client.enqueue("slow", {"seconds": 1})
        with pytest.raises(JobFailed, match="exceeded its timeout"):
            failing.result(timeout=10)
        many = client.enqueue_many([JobRequest("add", {"a": i, "b": 0}) for i in range(5)])
        assert [h.wait(timeout=10).value.total for h in many] == list(range(5))
