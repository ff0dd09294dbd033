"""Workflows from the outside, on a real redis-server with real worker processes: the HTTP routes
(``/v1/workflows``) and the CLI (``jobq workflow show|list``), with bad input refused naming the field and
nothing written. Every wait is bounded and generous; none is a fixed sleep."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests import workflow_tasks as wt
from tests.integration.harness import JOBQ, ROOT, StartWorker, subprocess_env
from worker import WorkflowState, chord, group, step
from worker.client.producer import Client
from worker.http.api import create_app
from worker.http.server import ApiServer
from worker.observability.metrics import Metrics
from worker.settings import JobqSettings

MODULES = {"JOBQ_TASK_MODULES": "tests.workflow_tasks"}
#: The CLI's environment: wide enough that no drawn line of a tree wraps (rich wraps at 80 columns off a terminal).
CLI_ENV = {**MODULES, "COLUMNS": "200"}
PATIENCE_S = 60.0
CHORD = {
    "chord": {
        "group": [{"task": "produce", "payload": {"value": v}} for v in (1, 2, 3)],
        "callback": {"task": "total", "payload": {"label": "api"}, "into": "values"},
    }
}


@pytest.fixture
def wf_settings(settings: JobqSettings) -> JobqSettings:
    return settings.model_copy(update={"task_modules": ["tests.workflow_tasks"]})


@pytest.fixture
async def wf_client(wf_settings: JobqSettings) -> AsyncIterator[Client]:
    async with Client(wf_settings) as c:
        yield c


@pytest.fixture
async def api(wf_client: Client) -> AsyncIterator[aiohttp.ClientSession]:
    """The API over the real Redis (no token), and a session whose base URL is it."""
    app = create_app(wf_client, Metrics(), token=None)
    s = wf_client.settings
    async with (
        ApiServer(app, "127.0.0.1", 0, read_timeout_s=s.api_read_timeout_s, max_connections=50) as server,
        aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session,
    ):
        yield session


def jobq(settings: JobqSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBQ, *args], env=subprocess_env(settings, **CLI_ENV), cwd=ROOT, capture_output=True, text=True, timeout=60
    )


async def get_json(api: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with api.get(path) as response:
        return response.status, await response.json()


async def post_json(api: aiohttp.ClientSession, path: str, body: Any = None) -> tuple[int, Any]:
    async with api.post(path, json=body) as response:
        return response.status, await response.json()


async def until_state(api: aiohttp.ClientSession, workflow_id: str, state: str) -> dict[str, Any]:
    """Poll GET /v1/workflows/{id} until the workflow is in ``state`` (bounded by PATIENCE_S)."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        status, body = await get_json(api, f"/v1/workflows/{workflow_id}")
        assert status == 200, body
        if body["state"] == state:
            return dict(body)
        assert time.monotonic() < deadline, f"workflow {workflow_id} still {body['state']}: {body['counts']}"
        await asyncio.sleep(0.05)


async def keys_of(client: Client, workflow_id: str) -> list[bytes]:
    found: list[bytes] = await client.redis.keys(f"*{workflow_id}*")
    return found


async def test_a_workflow_posted_as_json_runs_and_is_shown_listed_and_its_result_read(
    api: aiohttp.ClientSession, start_worker: StartWorker
) -> None:
    workflow_id = f"api-{uuid.uuid4().hex[:8]}"
    status, out = await post_json(api, "/v1/workflows", {"workflow": CHORD, "workflow_id": workflow_id})
    assert (status, out) == (201, {"workflow_id": workflow_id, "steps": 4, "last": [f"{workflow_id}.0.1"]})
    status, listed = await get_json(api, "/v1/workflows?limit=1000")
    assert status == 200
    assert workflow_id in [w["workflow_id"] for w in listed]
    start_worker(**MODULES)
    done = await until_state(api, workflow_id, "succeeded")
    assert done["counts"] == {"succeeded": 4}
    assert [s["job_id"] for s in done["steps"]] == [f"{workflow_id}.0.0.{i}" for i in range(3)] + [f"{workflow_id}.0.1"]
    assert {s["task"] for s in done["steps"]} == {"produce", "total"}
    assert done["tree"]["kind"] == "chord"
    header, callback = done["tree"]["members"]
    assert [m["status"] for m in header["members"]] == ["succeeded"] * 3
    assert (callback["job_id"], callback["status"]) == (f"{workflow_id}.0.1", "succeeded")
    status, result = await get_json(api, f"/v1/jobs/{workflow_id}.0.1/result?wait=10")
    assert (status, result["value"]) == (200, 6)
    status, again = await post_json(api, "/v1/workflows", {"workflow": CHORD, "workflow_id": workflow_id})
    assert status == 409
    assert [f["field"] for f in again["fields"]] == ["workflow_id"]


async def test_aborting_a_workflow_through_the_api_stops_its_steps(
    api: aiohttp.ClientSession, wf_client: Client
) -> None:
    # No worker: every step is queued or blocked when the abort comes.
    flow = {"chain": [{"task": "increment", "payload": {"value": 0}}, {"task": "increment"}, {"task": "increment"}]}
    status, out = await post_json(api, "/v1/workflows", {"workflow": flow})
    assert status == 201
    workflow_id = out["workflow_id"]
    status, aborted = await post_json(api, f"/v1/workflows/{workflow_id}/abort")
    assert status == 200
    assert aborted["workflow_id"] == workflow_id
    assert aborted["stopped"] >= 1
    after = await until_state(api, workflow_id, "failed")
    assert set(after["counts"]) <= {"aborted", "cancelled"}, after["counts"]
    assert (await wf_client.workflow(workflow_id).status()).state is WorkflowState.FAILED
    status, missing = await post_json(api, "/v1/workflows/no-such-workflow/abort")
    assert status == 404
    assert "no workflow no-such-workflow" in missing["error"]
    assert (await get_json(api, "/v1/workflows/no-such-workflow"))[0] == 404


@pytest.mark.parametrize(
    ("tree", "field"),
    [
        ({"chain": [{"task": "produce", "payload": {"value": 1}}, {"task": "no_such_task"}]}, "workflow.chain.1.task"),
        ({"chain": [{"task": "produce", "payload": {"value": 1}}, "total"]}, "workflow.chain.1"),
        ({"chord": {"group": [], "callback": {"task": "total", "into": "values"}}}, "workflow.chord.group"),
        ({"pipeline": [{"task": "produce"}]}, "workflow"),
        (
            {"group": [{"task": "produce", "payload": {"value": 1}}, {"task": "produce", "payload": {"value": "x"}}]},
            "workflow.group.1.payload.value",
        ),
        (
            # an int result cannot be a Number payload: found by the whole workflow's check, which names the steps
            {"chain": [{"task": "produce", "payload": {"value": 1}}, {"task": "increment"}]},
            "workflow",
        ),
    ],
)
async def test_bad_workflows_are_refused_naming_the_field_and_write_nothing(
    api: aiohttp.ClientSession, wf_client: Client, tree: dict[str, Any], field: str
) -> None:
    workflow_id = f"bad-{uuid.uuid4().hex[:8]}"
    status, out = await post_json(api, "/v1/workflows", {"workflow": tree, "workflow_id": workflow_id})
    assert status == 422, out
    assert field in [f["field"] for f in out["fields"]], out
    assert field in out["error"] or field == "workflow"
    if field == "workflow" and "pipeline" not in tree:
        assert "step 'increment'" in out["error"]  # the message names the step that does not fit
    assert await keys_of(wf_client, workflow_id) == []
    assert (await get_json(api, f"/v1/workflows/{workflow_id}"))[0] == 404


async def test_a_body_that_is_not_json_or_lacks_the_tree_is_refused(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/workflows", data=b"{not json") as response:
        assert response.status == 400
    status, out = await post_json(api, "/v1/workflows", {"workflow_id": "x", "on_failure": "maybe"})
    assert status == 422
    assert {f["field"] for f in out["fields"]} == {"workflow", "on_failure"}
    status, out = await get_json(api, "/v1/workflows?limit=0")
    assert status == 422
    assert [f["field"] for f in out["fields"]] == ["limit"]


async def test_jobq_workflow_show_draws_the_tree_with_states_and_counts(
    settings: JobqSettings, wf_client: Client, start_worker: StartWorker
) -> None:
    members = group(step(wt.produce, {"value": v}) for v in range(60))
    handle = await wf_client.enqueue_workflow(chord(members, step(wt.total, {"label": "cli"}, into="values")))
    start_worker(**MODULES)
    assert (await handle.wait(timeout_s=PATIENCE_S)).state is WorkflowState.SUCCEEDED
    wid = handle.workflow_id

    shown = jobq(settings, "workflow", "show", wid)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"workflow {wid}")
    assert "succeeded" in lines[0]
    assert any("chord" in line for line in lines)
    assert any("group of 60" in line for line in lines)
    assert any("60 steps: 60 succeeded (--full draws every member)" in line for line in lines)  # collapsed
    assert any(f"{wid}.0.1  total  succeeded" in line for line in lines)  # the callback, with its state
    assert lines[-1] == "61 steps: 61 succeeded; on failure: stop"

    full = jobq(settings, "workflow", "show", wid, "--full")
    assert all(f"{wid}.0.0.{i}  produce  succeeded" in full.stdout for i in range(60))

    as_json = jobq(settings, "workflow", "show", wid, "--json")
    assert as_json.returncode == 0, as_json.stderr
    body = orjson.loads(as_json.stdout)
    assert (body["workflow_id"], body["state"], body["counts"]) == (wid, "succeeded", {"succeeded": 61})
    assert len(body["steps"]) == 61
    assert body["tree"]["kind"] == "chord"


async def test_jobq_workflow_show_names_a_failed_step_and_what_it_cancelled(
    settings: JobqSettings, wf_client: Client, start_worker: StartWorker
) -> None:
    label = uuid.uuid4().hex[:8]
    await wf_client.redis.sadd(f"wfbroken:{label}", "2")  # type: ignore[misc]  # fail_while_broken refuses 2
    flow = chord(group(step(wt.produce, {"value": 1}), step(wt.fail_while_broken, {"value": 2, "label": label})),
                 step(wt.total, into="values"))  # fmt: skip
    handle = await wf_client.enqueue_workflow(flow)
    start_worker(**MODULES)
    status = await handle.wait(timeout_s=PATIENCE_S)
    assert status.state is WorkflowState.FAILED
    shown = jobq(settings, "workflow", "show", handle.workflow_id)
    assert shown.returncode == 0, shown.stderr
    callback = f"{handle.workflow_id}.0.1"
    line = next(line for line in shown.stdout.splitlines() if callback in line)
    assert "cancelled" in line
    assert f"(by {handle.workflow_id}.0.0.1)" in line
    assert "dead_lettered" in shown.stdout


def test_jobq_workflow_show_of_an_unknown_workflow_exits_1_saying_so(settings: JobqSettings) -> None:
    for args in (("workflow", "show", "no-such-workflow"), ("workflow", "show", "no-such-workflow", "--json")):
        out = jobq(settings, *args)
        assert out.returncode == 1
        assert out.stdout == ""
        assert "error: no workflow 'no-such-workflow': unknown, expired, or its enqueue did not finish" in out.stderr


async def test_jobq_workflow_list_shows_the_newest_first(settings: JobqSettings, wf_client: Client) -> None:
    first = await wf_client.enqueue_workflow(step(wt.produce, {"value": 1}), workflow_id=f"l1-{uuid.uuid4().hex[:8]}")
    await asyncio.sleep(0.01)  # the index orders by the millisecond of activation: two in one ms tie
    second = await wf_client.enqueue_workflow(
        chord(group(step(wt.produce, {"value": v}) for v in (1, 2)), step(wt.total, into="values")),
        workflow_id=f"l2-{uuid.uuid4().hex[:8]}",
    )
    listed = jobq(settings, "workflow", "list", "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    rows = orjson.loads(listed.stdout)
    ours = [r for r in rows if r["workflow_id"] in (first.workflow_id, second.workflow_id)]
    assert [(r["workflow_id"], r["steps"], r["state"]) for r in ours] == [
        (second.workflow_id, 3, "running"),
        (first.workflow_id, 1, "running"),
    ]
    assert all(r["created_at"] for r in ours)
    table = jobq(settings, "workflow", "list", "--limit", "2")
    assert table.returncode == 0, table.stderr
    assert table.stdout.index(second.workflow_id) < table.stdout.index(first.workflow_id)
    assert "2 workflows" in table.stdout
    refused = jobq(settings, "workflow", "list", "--limit", "0")
    assert refused.returncode == 2


def test_jobq_workflow_help_explains_the_commands(settings: JobqSettings) -> None:
    out = jobq(settings, "workflow", "--help")
    assert out.returncode == 0
    assert "show" in out.stdout
    assert "list" in out.stdout
    show = jobq(settings, "workflow", "show", "--help")
    assert "Exits 1 if the workflow is unknown" in show.stdout
    assert "--json" in show.stdout
    assert "--full" in show.stdout
