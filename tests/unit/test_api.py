"""The HTTP API over fakeredis: auth, validation that writes nothing, jobs, stats, dead letters, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from tests.unit.harness import Harness
from worker.http.api import create_app
from worker.observability.metrics import Metrics

TOKEN = "api-canary-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def http(harness: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(harness.client, Metrics(), token=TOKEN)
    async with TestClient(TestServer(app)) as client:
        yield client


async def keys(h: Harness) -> list[bytes]:
    return sorted(await h.redis.keys("*"))


def protected_routes() -> list[tuple[str, str]]:
    app = create_app(None, Metrics(), token=TOKEN)  # type: ignore[arg-type]  # routes only; never served
    found = {
        (route.method.lower(), route.resource.canonical.replace("{job_id}", "x").replace("{workflow_id}", "x"))
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/v1/")
        and route.method not in ("HEAD", "*")  # "*": the 405 of the batch routes
    }
    return sorted(found)


def test_every_v1_route_is_protected() -> None:
    assert len(protected_routes()) == 20  # a route added later is covered by the parametrised test below


@pytest.mark.parametrize(("method", "path"), protected_routes())
async def test_unauthenticated_calls_get_401(http: TestClient, method: str, path: str) -> None:  # type: ignore[type-arg]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = await getattr(http, method)(path, headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "bearer token" in (await response.json())["error"]


async def test_public_pages_need_no_token(http: TestClient) -> None:  # type: ignore[type-arg]
    for path in ("/dashboard", "/openapi.json", "/livez", "/metrics"):
        assert (await http.get(path)).status == 200


async def test_enqueue_then_status_result_and_idempotency(http: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    body = {"task": "add", "payload": {"a": 2, "b": 3}}
    first = await http.post("/v1/jobs", json=body, headers={**AUTH, "Idempotency-Key": "order-17"})
    assert first.status == 201
    assert await first.json() == {"job_id": "order-17", "queue": "arq:queue", "created": True}
    again = await http.post("/v1/jobs", json=body, headers={**AUTH, "Idempotency-Key": "order-17"})
    assert (again.status, (await again.json())["created"]) == (200, False)
    status = await (await http.get("/v1/jobs/order-17", headers=AUTH)).json()
    assert (status["status"], status["task"]) == ("queued", "add")
    assert (await http.get("/v1/jobs/order-17/result", headers=AUTH)).status == 202  # not done yet
    await harness.run_due()
    result = await (await http.get("/v1/jobs/order-17/result", headers=AUTH)).json()
    assert (result["status"], result["success"], result["value"]) == ("succeeded", True, {"total": 5, "try_number": 1})
    assert (await http.get("/v1/jobs/nope", headers=AUTH)).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task": "add", "payload": {"a": "x", "b": 1}}, "payload.a"),
        ({"task": "add", "payload": {"a": 1}}, "payload.b"),
        ({"task": "nope", "payload": {}}, "task"),
        ({"payload": {"a": 1, "b": 1}}, "task"),
        ({"task": "add", "payload": {"a": 1, "b": 1}, "defer_by": -1}, "defer_by"),
        ({"task": "add", "payload": {"a": 1, "b": 1}, "defer_until": "2030-01-01T00:00:00"}, "defer_until"),
        ({"task": "add", "payload": [1, 2]}, "payload"),
    ],
)
async def test_invalid_bodies_get_422_naming_the_field_and_write_nothing(
    http: TestClient,  # type: ignore[type-arg]
    harness: Harness,
    body: dict[str, Any],
    field: str,
) -> None:
    response = await http.post("/v1/jobs", json=body, headers=AUTH)
    assert response.status == 422
    assert field in [f["field"] for f in (await response.json())["fields"]]
    assert await keys(harness) == []


async def test_a_body_that_is_not_json_is_400(http: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    response = await http.post("/v1/jobs", data=b"{nope", headers=AUTH)
    assert response.status == 400
    assert "not JSON" in (await response.json())["error"]
    assert await keys(harness) == []


async def test_abort_stats_and_running(http: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    await http.post(
        "/v1/jobs", json={"task": "add", "payload": {"a": 1, "b": 1}, "job_id": "later", "defer_by": 60}, headers=AUTH
    )
    await http.post("/v1/jobs", json={"task": "add", "payload": {"a": 1, "b": 1}}, headers=AUTH)
    stats = await (await http.get("/v1/stats", headers=AUTH)).json()
    assert (stats["queued"], stats["deferred"]) == (2, 1)
    aborted = await (await http.post("/v1/jobs/later/abort", headers=AUTH)).json()
    assert aborted == {"job_id": "later", "status": "aborted"}
    assert await (await http.get("/v1/running", headers=AUTH)).json() == []
    assert await (await http.get("/v1/queues", headers=AUTH)).json() == ["arq:queue", "emails"]


async def test_dead_letters_list_show_replay_purge(http: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    for n in range(3):
        await harness.client.enqueue("permanent", {"note": str(n)}, job_id=f"dl{n}")
    await harness.run_due()
    listed = await (await http.get("/v1/dead-letters?task=permanent", headers=AUTH)).json()
    assert sorted(e["job_id"] for e in listed) == ["dl0", "dl1", "dl2"]
    assert all(e["envelope"] is None for e in listed)
    one = await (await http.get("/v1/dead-letters/dl0", headers=AUTH)).json()
    assert one["error_type"] == "worker.errors.PermanentError"
    assert one["envelope"].startswith('{"v":1')
    replayed = await http.post("/v1/dead-letters/dl0/replay", headers=AUTH)
    assert await replayed.json() == {"count": 1}
    assert (await http.post("/v1/dead-letters/dl0/replay", headers=AUTH)).status == 404
    refused = await http.post("/v1/dead-letters/purge", json={"task": "permanent"}, headers=AUTH)
    assert refused.status == 422
    assert "confirm=true" in (await refused.json())["error"]
    purged = await http.post("/v1/dead-letters/purge", json={"task": "permanent", "confirm": True}, headers=AUTH)
    assert await purged.json() == {"count": 2}
    unselected = await http.post("/v1/dead-letters/replay", json={}, headers=AUTH)
    assert unselected.status == 422
    assert (await http.get("/v1/dead-letters?since=yesterday", headers=AUTH)).status == 422


async def test_tasks_list_their_payload_schemas(http: TestClient) -> None:  # type: ignore[type-arg]
    tasks = {t["name"]: t for t in await (await http.get("/v1/tasks", headers=AUTH)).json()}
    assert tasks["add"]["payload_schema"]["required"] == ["a", "b"]
    assert tasks["flaky"]["max_tries"] == 3


async def test_openapi_document_is_valid_and_complete(http: TestClient) -> None:  # type: ignore[type-arg]
    document = await (await http.get("/openapi.json")).json()
    validate(document)
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/dead-letters/{job_id}/replay", "/v1/stats"} <= set(document["paths"])
    assert "AddIn" in document["components"]["schemas"]  # task payloads are documented too


async def test_api_counts_what_it_enqueues(harness: Harness) -> None:
    metrics = Metrics()
    async with TestClient(TestServer(create_app(harness.client, metrics, token=None))) as client:
        # token=None: the --dev mode, no authentication
        response = await client.post("/v1/jobs", json={"task": "add", "payload": {"a": 1, "b": 1}})
        assert response.status == 201
    # The harness client counts nothing itself; the API's own client would (see `jobq api`).
    assert b"jobq_jobs_enqueued_total" in metrics.render()
