"""Pausing and resuming queues through the HTTP API, and the pause and parked jobs in ``GET /v1/stats``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.harness import START_S, Harness
from tests.unit.test_api import AUTH, TOKEN
from worker.http.api import create_app
from worker.observability.metrics import Metrics
from worker.protocol.waiting import WAITING_BASE


@pytest.fixture
async def http(harness: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as client:
        yield client


def route(queue: str, action: str) -> str:
    return f"/v1/queues/{quote(queue, safe='')}/{action}"


async def test_pause_stops_the_workers_and_resume_lets_the_jobs_run(http: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    queue = harness.settings.queue_name
    job = await harness.client.enqueue("add", {"a": 1, "b": 2})
    paused = await http.post(route(queue, "pause"), headers=AUTH)
    assert paused.status == 200
    assert await paused.json() == {"queue": queue, "paused": True, "changed": True}
    pause = await harness.client.pause_of(queue)
    assert pause is not None
    assert (pause.by, pause.since) == ("api", datetime.fromtimestamp(START_S, UTC))  # no body: by "api"
    assert await harness.run_due() == 0
    resumed = await http.post(route(queue, "resume"), headers=AUTH)
    assert resumed.status == 200
    assert await resumed.json() == {"queue": queue, "paused": False, "changed": True}
    assert await harness.client.pause_of(queue) is None
    assert await harness.run_due() == 1
    assert (await job.result(timeout_s=1)).total == 3


async def test_pausing_again_keeps_the_first_pause_and_resuming_twice_changes_nothing(
    http: TestClient,  # type: ignore[type-arg]
    harness: Harness,
) -> None:
    first = await http.post(route("emails", "pause"), json={"by": "deploy 1.4"}, headers=AUTH)
    assert await first.json() == {"queue": "emails", "paused": True, "changed": True}
    harness.clock.advance(60)
    again = await http.post(route("emails", "pause"), json={"by": "someone else"}, headers=AUTH)
    assert (again.status, await again.json()) == (200, {"queue": "emails", "paused": True, "changed": False})
    pause = await harness.client.pause_of("emails")
    assert pause is not None
    assert (pause.by, pause.since) == ("deploy 1.4", datetime.fromtimestamp(START_S, UTC))
    assert (await (await http.post(route("emails", "resume"), headers=AUTH)).json())["changed"] is True
    twice = await http.post(route("emails", "resume"), headers=AUTH)
    assert (twice.status, await twice.json()) == (200, {"queue": "emails", "paused": False, "changed": False})
    assert await harness.client.pause_of(harness.settings.queue_name) is None  # the default queue was left alone


@pytest.mark.parametrize("body", [b"", b"{}", b'{"by": null}'], ids=["no body", "empty object", "null by"])
async def test_a_pause_without_a_by_records_api(http: TestClient, harness: Harness, body: bytes) -> None:  # type: ignore[type-arg]
    response = await http.post(route("q", "pause"), data=body, headers=AUTH)
    assert response.status == 200
    pause = await harness.client.pause_of("q")
    assert pause is not None
    assert pause.by == "api"


@pytest.mark.parametrize("name", ["{tenant}:emails", "a/b", "späße", "with space"])
async def test_any_valid_queue_name_can_be_paused_through_the_path(
    http: TestClient,  # type: ignore[type-arg]
    harness: Harness,
    name: str,
) -> None:
    response = await http.post(route(name, "pause"), headers=AUTH)
    assert (response.status, (await response.json())["queue"]) == (200, name)
    assert await harness.client.pause_of(name) is not None
    assert (await (await http.post(route(name, "resume"), headers=AUTH)).json())["changed"] is True


@pytest.mark.parametrize("action", ["pause", "resume"])
@pytest.mark.parametrize("name", ["jobq:dlq:arq:queue", "arq:job:x", "orders:index", " x", "x\x7f"], ids=repr)
async def test_a_bad_queue_name_is_422_naming_the_queue_and_writes_nothing(
    http: TestClient,  # type: ignore[type-arg]
    harness: Harness,
    action: str,
    name: str,
) -> None:
    response = await http.post(route(name, action), headers=AUTH)
    assert response.status == 422
    answer = await response.json()
    assert [f["field"] for f in answer["fields"]] == ["queue"]
    assert answer["error"].startswith("queue ")
    assert await harness.redis.keys("*") == []


async def test_a_bad_body_is_refused_and_pauses_nothing(http: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    too_long = await http.post(route("q", "pause"), json={"by": "x" * 201}, headers=AUTH)
    assert too_long.status == 422
    assert [f["field"] for f in (await too_long.json())["fields"]] == ["by"]
    assert (await http.post(route("q", "pause"), data=b"{nope", headers=AUTH)).status == 400
    assert (await http.post(route("q", "pause"), json={"by": 7}, headers=AUTH)).status == 422
    assert await harness.redis.keys("*") == []
    longest = await http.post(route("q", "pause"), json={"by": "x" * 200}, headers=AUTH)
    assert (longest.status, (await longest.json())["changed"]) == (200, True)


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
@pytest.mark.parametrize("action", ["pause", "resume"])
async def test_other_methods_are_405_allowing_only_post(http: TestClient, method: str, action: str) -> None:  # type: ignore[type-arg]
    response = await http.request(method, route("q", action), headers=AUTH)
    assert (response.status, response.headers["Allow"]) == (405, "POST")
    assert (await response.json())["error"] == "Method Not Allowed"


async def test_stats_show_the_pause_and_the_parked_jobs(http: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    queue = harness.settings.queue_name
    await harness.client.enqueue("add", {"a": 1, "b": 1})
    # A job parked on a full concurrency limit, due 5 s ago (lua/includes/waiting.lua scores it so).
    await harness.redis.zadd(queue, {"parked": WAITING_BASE + harness.clock.ms() - 5000})
    await harness.redis.zadd(f"jobq:waiting:{queue}:task:add", {"parked": harness.clock.ms() - 5000})
    await harness.redis.zadd(f"jobq:gates:{queue}", {"task:add": harness.clock.ms() + 5000})
    before = await (await http.get("/v1/stats", headers=AUTH)).json()
    assert (before["ready"], before["waiting"], before["deferred"], before["queued"]) == (1, 1, 0, 2)
    assert before["waiting_on"] == [{"gate": "task:add", "waiting": 1, "recheck_at": harness.clock() + 5}]
    assert (before["oldest_waiting_age_s"], before["paused"]) == (5.0, False)
    await http.post(route(queue, "pause"), headers=AUTH)
    during = await (await http.get("/v1/stats", headers=AUTH)).json()
    assert (during["paused"], during["ready"], during["waiting"]) == (True, 1, 1)
    other = await (await http.get("/v1/stats", params={"queue": "other"}, headers=AUTH)).json()
    assert (other["paused"], other["waiting"], other["oldest_waiting_age_s"]) == (False, 0, 0.0)
    await http.post(route(queue, "resume"), headers=AUTH)
    assert (await (await http.get("/v1/stats", headers=AUTH)).json())["paused"] is False


async def test_the_openapi_document_lists_the_routes_and_the_new_stats_fields(http: TestClient) -> None:  # type: ignore[type-arg]
    document = await (await http.get("/openapi.json")).json()
    for action in ("pause", "resume"):
        op = document["paths"][f"/v1/queues/{{queue}}/{action}"]["post"]
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/PauseOut"
        }
        assert {"401", "422", "503"} <= set(op["responses"])
        assert [(p["name"], p["in"], p["required"]) for p in op["parameters"]] == [("queue", "path", True)]
    assert "400" in document["paths"]["/v1/queues/{queue}/pause"]["post"]["responses"]  # it reads a body
    stats = document["components"]["schemas"]["StatsOut"]["properties"]
    assert {"waiting", "oldest_waiting_age_s", "paused"} <= set(stats)
    assert document["components"]["schemas"]["PauseBody"]["properties"]["by"]["anyOf"][0]["maxLength"] == 200
