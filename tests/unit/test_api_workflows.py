"""The workflow routes of the HTTP API over fakeredis: enqueue a JSON tree, status with every step, list, abort,
and refusals that name the field by its path and write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.harness import Harness
from tests.unit.test_api import AUTH, TOKEN
from worker.http.api import create_app
from worker.observability.metrics import Metrics

CHORD = {
    "chord": {
        "group": [{"task": "produce", "payload": {"value": v}} for v in (1, 2, 3)],
        "callback": {"task": "total", "payload": {"label": "sum"}, "into": "values"},
    }
}


@pytest.fixture
def h(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(task_modules=["tests.workflow_tasks"])


@pytest.fixture
async def http(h: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(h.client, Metrics(), token=TOKEN))) as client:
        yield client


async def drain(h: Harness) -> None:
    for _ in range(50):
        if not await h.run_due():
            return


async def post(http: TestClient, body: dict[str, Any]) -> tuple[int, Any]:  # type: ignore[type-arg]
    response = await http.post("/v1/workflows", json=body, headers=AUTH)
    return response.status, await response.json()


async def test_a_chord_enqueued_as_json_runs_and_its_status_lists_every_step(http: TestClient, h: Harness) -> None:  # type: ignore[type-arg]
    status, out = await post(http, {"workflow": CHORD, "workflow_id": "wf1"})
    assert (status, out) == (201, {"workflow_id": "wf1", "steps": 4, "last": ["wf1.0.1"]})
    before = await (await http.get("/v1/workflows/wf1", headers=AUTH)).json()
    assert before["state"] == "running"
    assert [(s["job_id"], s["status"]) for s in before["steps"]] == [
        ("wf1.0.0.0", "queued"), ("wf1.0.0.1", "queued"), ("wf1.0.0.2", "queued"), ("wf1.0.1", "blocked")
    ]  # fmt: skip
    await drain(h)
    after = await (await http.get("/v1/workflows/wf1", headers=AUTH)).json()
    assert (after["state"], after["counts"], after["on_failure"]) == ("succeeded", {"succeeded": 4}, "stop")
    tree = after["tree"]
    assert tree["kind"] == "chord"
    assert [m["kind"] for m in tree["members"]] == ["group", "step"]
    assert tree["members"][1] == {"kind": "step", "job_id": "wf1.0.1", "task": "total", "status": "succeeded",
                                  "members": []}  # fmt: skip
    result = await (await http.get("/v1/jobs/wf1.0.1/result", headers=AUTH)).json()
    assert result["value"] == 6
    listed = await (await http.get("/v1/workflows", headers=AUTH)).json()
    assert [(w["workflow_id"], w["steps"]) for w in listed] == [("wf1", 4)]


async def test_a_taken_workflow_id_is_409(http: TestClient) -> None:  # type: ignore[type-arg]
    body = {"workflow": {"task": "produce", "payload": {"value": 1}}, "workflow_id": "same"}
    assert (await post(http, body))[0] == 201
    status, out = await post(http, body)
    assert status == 409
    assert [f["field"] for f in out["fields"]] == ["workflow_id"]


@pytest.mark.parametrize(
    ("tree", "field"),
    [
        ({"chain": [{"task": "produce", "payload": {"value": 1}}, {"task": "nope"}]}, "workflow.chain.1.task"),
        ({"chain": [{"task": "produce", "payload": {"value": "x"}}]}, "workflow.chain.0.payload.value"),
        ({"group": [{"task": "produce", "payload": {}}]}, "workflow.group.0.payload.value"),
        ({"chain": [{"task": "produce", "payload": {"value": 1}}, 7]}, "workflow.chain.1"),
        ({"chain": []}, "workflow.chain"),
        ({"chain": [{"task": "produce", "payload": {"value": 1}}], "task": "x"}, "workflow.task"),
        ({"chord": {"group": [{"task": "produce", "payload": {"value": 1}}]}}, "workflow.chord.callback"),
        ({"task": "produce", "payload": {"value": 1}, "priority": 300}, "workflow.priority"),
        ({"task": "produce", "payload": {"value": 1}, "queue": "arq:job:x"}, "workflow.queue"),
        ({"chain": [{"task": "produce", "payload": {"value": 1}}, {"task": "total"}]}, "workflow.chain"),
        (
            {"chord": {"group": [{"task": "produce", "payload": {"value": 1}}],
                       "callback": {"task": "total", "payload": {"label": 5}, "into": "values"}}},
            "workflow.chord.callback.payload.label",
        ),
        (
            {"chord": {"group": [{"task": "produce", "payload": {"value": 1}}],
                       "callback": {"task": "total", "into": "nope"}}},
            "workflow.chord.callback.into",
        ),
        ({"task": "total", "into": "values"}, "workflow"),
    ],
)  # fmt: skip
async def test_bad_trees_are_422_naming_the_field_and_write_nothing(
    http: TestClient,  # type: ignore[type-arg]
    h: Harness,
    tree: dict[str, Any],
    field: str,
) -> None:
    status, out = await post(http, {"workflow": tree})
    assert status == 422, out
    assert field in [f["field"] for f in out["fields"]], out
    assert await h.redis.keys("*") == []


async def test_unknown_workflows_are_404_and_abort_stops_what_has_not_ended(http: TestClient) -> None:  # type: ignore[type-arg]
    assert (await http.get("/v1/workflows/nope", headers=AUTH)).status == 404
    assert (await http.post("/v1/workflows/nope/abort", headers=AUTH)).status == 404
    assert (await post(http, {"workflow": CHORD, "workflow_id": "wf2"}))[0] == 201
    aborted = await (await http.post("/v1/workflows/wf2/abort", headers=AUTH)).json()
    assert aborted["workflow_id"] == "wf2"
    assert aborted["stopped"] >= 1
    after = await (await http.get("/v1/workflows/wf2", headers=AUTH)).json()
    assert after["state"] == "failed"
    assert "succeeded" not in after["counts"]
