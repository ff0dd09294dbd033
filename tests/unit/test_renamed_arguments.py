"""Units in names: ``timeout_s`` for a job's time limit, ``timeout_s``/``wait_s`` for how long a caller waits.

The old spellings (``timeout=``, ``wait=``, the HTTP ``timeout`` field, ``--timeout``/``--wait``) keep
working for one release: each warns and names the new one; giving both spellings is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from tests.unit.harness import Harness
from worker import JobRequest, JobStatus, SyncClient
from worker.cli.app import app as cli
from worker.errors import ConflictingArguments
from worker.http.api import create_app
from worker.http.openapi import openapi_document
from worker.observability.metrics import Metrics
from worker.settings import JobqSettings
from worker.taskdef.registry import TaskRegistry

TOKEN = "renamed-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADD = {"a": 1, "b": 2}


async def job_options(h: Harness, job_id: str) -> Any:
    return orjson.loads(await h.redis.get(f"arq:job:{job_id}"))["d"]["k"]


async def test_enqueue_takes_timeout_s_and_the_old_timeout_warns(harness: Harness) -> None:
    await harness.client.enqueue("add", ADD, job_id="new", timeout_s=2.5)
    with pytest.warns(DeprecationWarning, match=r"Client\.enqueue\(timeout=\.\.\.\) is deprecated, use .*timeout_s="):
        await harness.client.enqueue("add", ADD, job_id="old", timeout=2.5)
    assert await job_options(harness, "new") == await job_options(harness, "old") == {"_jobq": {"timeout_s": 2.5}}


async def test_enqueue_with_both_spellings_is_refused_and_writes_nothing(harness: Harness) -> None:
    with pytest.raises(ConflictingArguments, match=r"both timeout_s= and its deprecated spelling timeout="):
        await harness.client.enqueue("add", ADD, timeout=1, timeout_s=2)
    assert await harness.redis.keys("*") == []


def test_job_request_takes_timeout_s_and_the_old_timeout_warns() -> None:
    assert JobRequest("add", ADD, None, None, None, 3).timeout_s == 3  # the position is unchanged
    with pytest.warns(DeprecationWarning, match=r"JobRequest\(timeout=\.\.\.\)") as caught:
        old = JobRequest("add", ADD, timeout=3)
    assert caught[0].filename == __file__  # blames the line that built it
    assert old.timeout_s == 3
    assert old == JobRequest("add", ADD, timeout_s=3)
    with pytest.raises(ConflictingArguments):
        JobRequest("add", ADD, timeout=3, timeout_s=4)


async def test_enqueue_many_carries_timeout_s(harness: Harness) -> None:
    await harness.client.enqueue_many([JobRequest("add", ADD, job_id="b1", timeout_s=4)])
    assert await job_options(harness, "b1") == {"_jobq": {"timeout_s": 4.0}}


async def test_handles_wait_with_timeout_s_and_the_old_keywords_warn(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", ADD)
    await harness.run_due()
    assert (await handle.wait(timeout_s=1)).success
    assert (await handle.result(timeout_s=1)).total == 3
    with pytest.warns(DeprecationWarning, match=r"JobHandle\.wait\(timeout=\.\.\.\) is deprecated") as caught:
        assert (await handle.wait(timeout=1)).success
    assert caught[0].filename == __file__
    with pytest.warns(DeprecationWarning, match=r"JobHandle\.result\(timeout=\.\.\.\)"):
        assert (await handle.result(timeout=1)).total == 3
    with pytest.warns(DeprecationWarning, match=r"JobHandle\.abort\(wait=\.\.\.\)"):
        assert await handle.abort(wait=1) is JobStatus.SUCCEEDED
    with pytest.warns(DeprecationWarning, match=r"Client\.abort\(wait=\.\.\.\)"):
        assert await harness.client.abort(handle.job_id, wait=1) is JobStatus.SUCCEEDED
    assert await handle.abort(wait_s=1) is JobStatus.SUCCEEDED
    for call in (handle.wait, handle.result):
        with pytest.raises(ConflictingArguments):
            await call(1, timeout=1)
    with pytest.raises(ConflictingArguments):
        await handle.abort(wait=1, wait_s=1)


def test_the_sync_facade_takes_the_same_names(make_settings: Callable[..., JobqSettings]) -> None:
    # Every conflict is refused before Redis is asked anything, so no server is needed.
    with SyncClient(make_settings(redis_url="redis://127.0.0.1:1/0"), registry=TaskRegistry()) as client:
        with pytest.raises(ConflictingArguments, match=r"SyncClient\.enqueue"):
            client.enqueue("add", ADD, timeout=1, timeout_s=1)
        with pytest.raises(ConflictingArguments, match=r"SyncClient\.abort"):
            client.abort("x", wait=1, wait_s=1)
        handle = client.job("x")
        with pytest.raises(ConflictingArguments, match=r"SyncJobHandle\.wait"):
            handle.wait(1, timeout=1)
        with pytest.raises(ConflictingArguments, match=r"SyncJobHandle\.result"):
            handle.result(1, timeout=1)
        with pytest.raises(ConflictingArguments, match=r"SyncJobHandle\.abort"):
            handle.abort(wait_s=1, wait=1)


@pytest.fixture
async def http(harness: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as client:
        yield client


async def test_the_http_body_takes_timeout_s_and_still_the_old_timeout(
    http: TestClient,  # type: ignore[type-arg]
    harness: Harness,
) -> None:
    for job_id, field in (("h-new", "timeout_s"), ("h-old", "timeout")):
        response = await http.post(
            "/v1/jobs", json={"task": "add", "payload": ADD, "job_id": job_id, field: 2}, headers=AUTH
        )
        assert response.status == 201, await response.text()
        assert await job_options(harness, job_id) == {"_jobq": {"timeout_s": 2.0}}
    both = {"task": "add", "payload": ADD, "timeout": 1, "timeout_s": 2}
    response = await http.post("/v1/jobs", json=both, headers=AUTH)
    assert response.status == 422
    fields = (await response.json())["fields"]
    assert [f["field"] for f in fields] == ["timeout"]
    assert "deprecated spelling of timeout_s" in fields[0]["message"]


def test_the_openapi_document_marks_the_old_field_deprecated() -> None:
    properties = openapi_document(TaskRegistry())["components"]["schemas"]["EnqueueBody"]["properties"]
    assert properties["timeout"]["deprecated"] is True
    assert "deprecated" not in properties["timeout_s"]


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"JOBQ_REDIS_URL": "redis://127.0.0.1:1/0"})


@pytest.mark.parametrize(
    ("command", "new_options", "old_options"),
    [
        (["enqueue", "--help"], ["--timeout-s", "--wait-s"], ["--timeout ", "--wait "]),
        (["job", "result", "--help"], ["--wait-s"], ["--timeout "]),
        (["job", "abort", "--help"], ["--wait-s"], ["--wait "]),
    ],
)
def test_the_cli_shows_only_the_new_options(command: list[str], new_options: list[str], old_options: list[str]) -> None:
    shown = run_cli(*command).output
    assert all(option in shown for option in new_options), shown
    assert not any(option in shown for option in old_options), shown


@pytest.mark.parametrize(
    ("args", "old", "new"),
    [
        (["enqueue", "add", "--timeout", "1", "--timeout-s", "2"], "--timeout", "--timeout-s"),
        (["enqueue", "add", "--wait", "1", "--wait-s", "2"], "--wait", "--wait-s"),
        (["job", "result", "x", "--timeout", "1", "--wait-s", "2"], "--timeout", "--wait-s"),
        (["job", "abort", "x", "--wait", "1", "--wait-s", "2"], "--wait", "--wait-s"),
    ],
)
def test_the_cli_refuses_both_spellings(args: list[str], old: str, new: str) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2
    assert f"{old} is the deprecated spelling of {new}" in result.output


def test_an_old_cli_option_still_works_and_warns_on_stderr() -> None:
    result = run_cli("job", "result", "x", "--timeout", "0")  # then fails to reach Redis: exit 1
    assert "warning: --timeout is deprecated, use --wait-s" in result.stderr
    assert result.exit_code == 1
