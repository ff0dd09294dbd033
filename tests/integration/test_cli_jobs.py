"""`jobq job ...` and `jobq dlq ...` against a real Redis and worker."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import orjson

from tests.integration.conftest import JOBQ, ROOT, WorkerProcess, subprocess_env
from worker.client import Client
from worker.settings import JobqSettings

StartWorker = Callable[..., WorkerProcess]


def jobq(settings: JobqSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBQ, *args], env=subprocess_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=60
    )


async def test_job_status_result_and_abort(settings: JobqSettings, client: Client, start_worker: StartWorker) -> None:
    start_worker()
    done = await client.enqueue("add", {"a": 2, "b": 3})
    await done.wait(timeout=10)
    status = jobq(settings, "job", "status", done.job_id, "--json")
    assert status.returncode == 0, status.stderr
    info = orjson.loads(status.stdout)
    assert (info["status"], info["task"], info["tries"]) == ("succeeded", "add", 1)
    result = jobq(settings, "job", "result", done.job_id)
    assert orjson.loads(result.stdout) == {"total": 5, "try_number": 1}
    later = await client.enqueue("add", {"a": 1, "b": 1}, defer_by=3600)
    aborted = jobq(settings, "job", "abort", later.job_id)
    assert (aborted.returncode, aborted.stdout.strip()) == (0, f"{later.job_id}: aborted")
    again = jobq(settings, "job", "abort", later.job_id)  # idempotent: the job is aborted
    assert (again.returncode, again.stdout.strip()) == (0, f"{later.job_id}: aborted")
    finished = jobq(settings, "job", "abort", done.job_id)
    assert finished.returncode == 1
    assert "already finished (succeeded); nothing to abort" in finished.stdout


def test_unknown_job_exits_1(settings: JobqSettings) -> None:
    out = jobq(settings, "job", "status", "nope")
    assert out.returncode == 1
    assert "not_found" in out.stdout
    assert jobq(settings, "job", "abort", "nope").returncode == 1
    missing = jobq(settings, "job", "result", "nope")
    assert missing.returncode == 1
    assert "JobNotFound" in missing.stderr


async def test_failed_job_result_exits_1_with_the_error(
    settings: JobqSettings, client: Client, start_worker: StartWorker
) -> None:
    start_worker()
    handle = await client.enqueue("permanent", {"note": "cli"})
    await handle.wait(timeout=10)
    out = jobq(settings, "job", "result", handle.job_id)
    assert out.returncode == 1
    assert "PermanentError: cannot ever work: cli" in out.stderr


async def test_dead_letters_list_show_replay_purge(
    settings: JobqSettings, client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker()
    handles = [await client.enqueue("permanent", {"note": str(i)}) for i in range(3)]
    for h in handles:
        await h.wait(timeout=10)
    worker.stop()  # replayed jobs must stay queued so the test can see them
    listed = orjson.loads(jobq(settings, "dlq", "list", "--json", "--task", "permanent").stdout)
    assert {e["job_id"] for e in listed} == {h.job_id for h in handles}
    shown = jobq(settings, "dlq", "show", handles[0].job_id)
    assert "worker.errors.PermanentError: cannot ever work: 0" in shown.stdout
    assert "Traceback" in shown.stdout
    refused = jobq(settings, "dlq", "replay")
    assert refused.returncode == 2
    assert "give job ids, a filter" in refused.stderr
    replayed = jobq(settings, "dlq", "replay", handles[0].job_id)
    assert replayed.stdout.strip() == "replayed 1 dead letters"
    assert await client.redis.zscore(settings.queue_name, handles[0].job_id) is not None
    unconfirmed = jobq(settings, "dlq", "purge", "--all")
    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    purged = jobq(settings, "dlq", "purge", "--since", "1h", "--yes")
    assert purged.stdout.strip() == "purged 2 dead letters"
    assert orjson.loads(jobq(settings, "dlq", "list", "--json").stdout) == []


def test_bad_time_filter_is_a_usage_error(settings: JobqSettings) -> None:
    out = jobq(settings, "dlq", "list", "--since", "yesterday-ish")
    assert out.returncode == 2
    assert "--since: 'yesterday-ish' is neither an ISO 8601 time" in out.stderr


def test_cron_lists_schedules_and_overrides(settings: JobqSettings) -> None:
    env = subprocess_env(settings, JOBQ_TASK_MODULES="tests.cron_tasks", JOBQ_CRON='{"quarter-hourly": "off"}')
    env["COLUMNS"] = "200"
    out = subprocess.run([JOBQ, "cron", "list"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "every-second" in out.stdout
    assert "every 1s" in out.stdout
    assert "off (JOBQ_CRON)" in out.stdout
    env["JOBQ_CRON"] = '{"nope": "off"}'
    bad = subprocess.run([JOBQ, "cron", "list"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "JOBQ_CRON names unknown schedules ['nope']" in bad.stderr


def test_burst_and_processes_do_not_mix(settings: JobqSettings) -> None:
    out = jobq(settings, "worker", "--burst", "--processes", "2")
    assert out.returncode == 2
    assert "--burst and --processes do not mix" in out.stderr
