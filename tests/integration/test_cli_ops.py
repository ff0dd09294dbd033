"""`jobq enqueue`, `jobq stats` and `jobq api` as subprocesses against a real Redis."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
import urllib.request

import orjson
import pytest

from tests.integration.harness import JOBQ, ROOT, StartWorker, subprocess_env
from tests.integration.test_cli_jobs import jobq
from worker.client.producer import Client
from worker.client.stats import queue_stats
from worker.process.embedded import free_port
from worker.settings import JobqSettings


async def test_enqueue_prints_the_job_and_waits_for_its_result(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    start_worker()
    done = jobq(settings, "enqueue", "add", "--json", '{"a": 20, "b": 22}', "--job-id", "cli-add", "--wait-s", "10")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {
        "job_id": "cli-add", "queue": settings.queue_name, "created": True,
        "result": {"total": 42, "try_number": 1},
    }  # fmt: skip
    again = jobq(settings, "enqueue", "add", "--json", '{"a": 1, "b": 1}', "--job-id", "cli-add")
    assert (again.returncode, orjson.loads(again.stdout)["created"]) == (0, False)  # the idempotency key held


async def test_enqueue_refuses_bad_input_and_writes_nothing(settings: JobqSettings, client: Client) -> None:
    jobs_before = set(await client.redis.keys("arq:job:*"))  # the session's Redis holds other tests' jobs
    wrong_type = jobq(settings, "enqueue", "add", "--json", '{"a": "many", "b": 1}')
    assert wrong_type.returncode == 2
    assert "invalid payload for task 'add': a: Input should be a valid integer" in wrong_type.stderr
    not_json = jobq(settings, "enqueue", "add", "--json", "{a: 1")
    assert (not_json.returncode, "--json is not valid JSON" in not_json.stderr) == (2, True)
    unknown = jobq(settings, "enqueue", "no_such_task")
    assert (unknown.returncode, "unknown task 'no_such_task'" in unknown.stderr) == (2, True)
    assert await client.redis.zcard(settings.queue_name) == 0
    assert set(await client.redis.keys("arq:job:*")) == jobs_before


async def test_stats_matches_redis_as_a_table_json_and_live(settings: JobqSettings, client: Client) -> None:
    await client.enqueue("add", {"a": 1, "b": 1})
    await client.enqueue("add", {"a": 1, "b": 1}, defer_by=3600)
    as_json = jobq(settings, "stats", "--json", "--queue", settings.queue_name)
    assert as_json.returncode == 0, as_json.stderr
    [shown] = orjson.loads(as_json.stdout)
    expected = await queue_stats(client.redis, settings.queue_name)
    assert (shown["ready"], shown["deferred"], shown["workers"]) == (expected.ready, expected.deferred, 0) == (1, 1, 0)
    table = subprocess.run(
        [JOBQ, "stats"], env={**subprocess_env(settings), "COLUMNS": "200"}, cwd=ROOT, capture_output=True, text=True
    )
    assert table.returncode == 0
    assert settings.queue_name in table.stdout
    assert "oldest ready" in table.stdout
    # On a terminal (a pty) the live table is drawn at once: the interrupt comes after its first frame,
    # whatever the start-up takes.
    terminal, child_end = pty.openpty()
    watching = subprocess.Popen(
        [JOBQ, "stats", "--watch", "--interval", "0.2"],
        env={**subprocess_env(settings), "COLUMNS": "200"}, cwd=ROOT, stdout=child_end, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(child_end)
    try:
        shown = _read_until(terminal, settings.queue_name.encode(), watching, timeout_s=30)
        watching.send_signal(signal.SIGINT)
        shown += _read_until(terminal, None, watching, timeout_s=30)
        _, stderr = watching.communicate(timeout=30)
    finally:
        os.close(terminal)
    assert watching.returncode == 0, stderr.decode()
    assert settings.queue_name.encode() in shown


def _read_until(fd: int, wanted: bytes | None, proc: subprocess.Popen[bytes], *, timeout_s: float) -> bytes:
    """What the process writes to the terminal ``fd``, until ``wanted`` shows (``None``: until it exits)."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while wanted is None or wanted not in seen:
        assert time.monotonic() < deadline, f"waited {timeout_s}s for {wanted!r}; the terminal showed {seen[-2000:]!r}"
        if select.select([fd], [], [], 0.05)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the process closed the terminal
                chunk = b""
            seen += chunk
            if not chunk and proc.poll() is not None:
                break
        elif proc.poll() is not None and wanted is None:
            break
    return seen


def test_api_refuses_to_start_without_a_token(settings: JobqSettings) -> None:
    refused = jobq(settings, "api", "--port", str(free_port()))
    assert refused.returncode == 2
    assert "JOBQ_API_TOKEN is not set" in refused.stderr
    assert "--dev" in refused.stderr


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("token", [None, "s3cret-token"], ids=["dev", "token"])
def test_api_serves_until_sigterm(settings: JobqSettings, token: str | None) -> None:
    port = free_port()
    env = subprocess_env(settings, **({"JOBQ_API_TOKEN": token} if token else {}))
    args = [JOBQ, "api", "--port", str(port)] + ([] if token else ["--dev"])
    api = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _ = _get(f"{url}/livez")
                break
            except OSError:
                assert time.monotonic() < deadline, "the API never listened"
                time.sleep(0.1)
        assert status == 200
        if token:
            assert _get(f"{url}/v1/stats")[0] == 401
            assert _get(f"{url}/v1/stats", "wrong")[0] == 401
        status, body = _get(f"{url}/v1/stats", token)
        assert status == 200
        assert orjson.loads(body)["queue"] == settings.queue_name
    finally:
        api.send_signal(signal.SIGTERM)
        stdout, stderr = api.communicate(timeout=10)
    assert api.returncode == 0, stderr
    assert ("accepts requests without a token" in stderr) is (token is None)
    assert token is None or token not in stdout + stderr  # the token never reaches the output
