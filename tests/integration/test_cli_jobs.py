"""`jobq job ...` and `jobq dlq ...` against a real Redis and worker."""

from __future__ import annotations

import asyncio
import subprocess

import orjson
import pytest

from tests.integration.harness import JOBQ, ROOT, StartWorker, subprocess_env
from worker.client.producer import Client
from worker.settings import JobqSettings
from worker.states import JobStatus


def jobq(settings: JobqSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBQ, *args], env=subprocess_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=60
    )


async def test_job_status_result_and_abort(settings: JobqSettings, client: Client, start_worker: StartWorker) -> None:
    start_worker()
    done = await client.enqueue("add", {"a": 2, "b": 3})
    await done.wait(timeout_s=10)
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
    await handle.wait(timeout_s=10)
    out = jobq(settings, "job", "result", handle.job_id)
    assert out.returncode == 1
    assert "PermanentError: cannot ever work: cli" in out.stderr


async def test_dead_letters_list_show_replay_purge(
    settings: JobqSettings, client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker()
    handles = [await client.enqueue("permanent", {"note": str(i)}) for i in range(3)]
    for h in handles:
        await h.wait(timeout_s=10)
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


async def test_job_status_json_for_dead_lettered_retrying_and_aborted_jobs(
    settings: JobqSettings, client: Client, start_worker: StartWorker
) -> None:
    start_worker()
    dead = await client.enqueue("permanent", {"note": "status"})
    await dead.wait(timeout_s=10)
    retrying = await client.enqueue("flaky", {"failures": 2})  # the next try is 10 s away
    aborted = await client.enqueue("add", {"a": 1, "b": 1}, defer_by=3600)
    await aborted.abort()
    deadline = asyncio.get_running_loop().time() + 30
    while (await retrying.status()).status is not JobStatus.RETRYING:
        assert asyncio.get_running_loop().time() < deadline, "the flaky job never failed its first try"
        await asyncio.sleep(0.05)
    for handle, status in ((dead, "dead_lettered"), (retrying, "retrying"), (aborted, "aborted")):
        out = jobq(settings, "job", "status", handle.job_id, "--json")
        assert out.returncode == 0, out.stderr
        info = orjson.loads(out.stdout)
        assert (info["job_id"], info["status"]) == (handle.job_id, status)
        assert info["last_error"]["type"]
        assert "Traceback" not in out.stderr


async def test_replaying_a_dead_letter_whose_job_is_queued_again_is_one_line(
    settings: JobqSettings, client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker()
    handle = await client.enqueue("permanent", {"note": "twice"})
    await handle.wait(timeout_s=10)
    worker.stop()
    await client.redis.delete(f"arq:result:{handle.job_id}")  # the result expired, and the id is queued again
    assert (await client.enqueue("add", {"a": 1, "b": 1}, job_id=handle.job_id)).created
    out = jobq(settings, "dlq", "replay", handle.job_id)
    assert out.returncode == 1
    assert out.stdout.strip() == "replayed 0 dead letters"
    assert out.stderr.strip() == (
        f"error: a job with id {handle.job_id} is already queued on {settings.queue_name!r}; purge the dead letter"
    )


def test_enqueue_wait_prints_the_job_id_when_the_job_fails(settings: JobqSettings, start_worker: StartWorker) -> None:
    start_worker()
    args = ("--json", '{"note": "waited"}', "--job-id", "waited-1", "--wait-s", "20")
    out = jobq(settings, "enqueue", "permanent", *args)
    assert out.returncode == 1
    answer = orjson.loads(out.stdout)
    assert (answer["job_id"], answer["status"]) == ("waited-1", "failed")
    assert answer["error"]["message"] == "cannot ever work: waited"


def test_an_invalid_sentry_dsn_stops_the_worker_with_exit_2(settings: JobqSettings) -> None:
    env = subprocess_env(settings, JOBQ_SENTRY_DSN="canary-not-a-dsn")
    out = subprocess.run([JOBQ, "worker", "--burst"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "JOBQ_SENTRY_DSN=<hidden>: not a Sentry DSN" in out.stderr
    assert "Traceback" not in out.stderr
    assert "canary-not-a-dsn" not in out.stderr


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("{not json", "JOBQ_CRON='{not json': not a JSON object"),
        ('{"quarter-hourly": "every 99999999999999999999h"}', "JOBQ_CRON['quarter-hourly']: an interval must be"),
        ('{"quarter-hourly": "61 * * * *"}', "JOBQ_CRON['quarter-hourly']: bad cron expression '61 * * * *'"),
    ],
)
def test_a_malformed_jobq_cron_is_one_line_naming_it(settings: JobqSettings, cron: str, expected: str) -> None:
    env = subprocess_env(settings, JOBQ_TASK_MODULES="tests.cron_tasks", JOBQ_CRON=cron)
    for command in (["cron", "list"], ["worker", "--burst"]):
        out = subprocess.run([JOBQ, *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, (command, out.stderr)
        assert expected in out.stderr
        assert "Traceback" not in out.stderr
