"""The HTTP API against hostile input: deep bodies, raw header bytes, results it cannot decode, queue names
that name keys of another type, and methods a path does not have. Every answer is JSON, none is a 500."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.harness import reply
from tests.unit.harness import Harness
from tests.unit.test_api import AUTH, TOKEN
from worker.http.api import create_app
from worker.observability.metrics import Metrics

JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as client:
        yield client


@pytest.fixture
async def webhooks_http(make_harness: Callable[..., Harness]) -> AsyncIterator[tuple[TestClient, Harness]]:  # type: ignore[type-arg]
    """The API over tasks that take a free-form ``dict[str, Any]`` field (the webhook's ``data``)."""
    harness = make_harness(task_modules=["tests.sample_tasks", "tasks.webhooks"])
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as client:
        yield client, harness


def webhook_body(depth: int) -> str:
    data = '{"a":' * depth + "1" + "}" * depth
    return '{"task":"deliver_webhook","payload":{"url":"http://example.com/","event":"e","data":' + data + "}}"


@pytest.mark.parametrize("depth", [300, 1000])
async def test_a_free_form_field_nested_too_deep_is_422_naming_it(
    webhooks_http: tuple[TestClient, Harness],  # type: ignore[type-arg]
    depth: int,
) -> None:
    api, harness = webhooks_http
    response = await api.post("/v1/jobs", data=webhook_body(depth), headers=JSON)
    assert response.status == 422
    body = await response.json()
    assert [f["field"] for f in body["fields"]] == ["payload.data"]
    assert "nested deeper than 100 levels" in body["error"]
    assert await harness.redis.keys("*") == []
    fine = await api.post("/v1/jobs", data=webhook_body(90), headers=JSON)
    assert fine.status == 201


async def raw_request(api: TestClient, request: bytes) -> bytes:  # type: ignore[type-arg]
    """Send ``request`` as raw bytes (no client library re-encodes it) and read the whole answer."""
    assert api.server.host is not None
    reader, writer = await asyncio.open_connection(api.server.host, api.server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("token", [b"Bearer \xff\xfe", b"\xc3(", b"Bearer " + TOKEN.encode() + b"\x80"])
async def test_authorization_bytes_that_are_not_utf8_get_401(api: TestClient, token: bytes) -> None:  # type: ignore[type-arg]
    answer = await raw_request(
        api, b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: " + token + b"\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"bearer token" in answer


async def test_a_result_that_is_not_a_jobq_envelope_is_answered_with_what_is_known(
    api: TestClient,  # type: ignore[type-arg]
    harness: Harness,
) -> None:
    # What a stock arq worker with its default serializer leaves behind.
    await harness.redis.set("arq:result:pickled", pickle.dumps({"t": 1, "f": "add", "s": True, "r": 5}))
    status = await api.get("/v1/jobs/pickled", headers=AUTH)
    assert status.status == 200
    info = await status.json()
    assert (info["job_id"], info["status"]) == ("pickled", "undecodable")
    assert info["decode_error"].startswith("the stored result could not be decoded: not a jobq envelope")
    result = await api.get("/v1/jobs/pickled/result", headers=AUTH)
    assert result.status == 200
    out = await result.json()
    assert (out["status"], out["success"], out["value"]) == ("undecodable", None, None)
    assert "could not be decoded" in out["decode_error"]


@pytest.mark.parametrize("path", ["/v1/stats", "/v1/running", "/v1/jobs/j1", "/v1/jobs/j1/result", "/v1/jobs/j1/abort"])
async def test_a_queue_naming_a_key_of_another_type_is_409_naming_the_queue(
    api: TestClient,  # type: ignore[type-arg]
    harness: Harness,
    path: str,
) -> None:
    await harness.redis.set("not-a-queue", "a string")
    call = api.post if path.endswith("abort") else api.get
    response = await call(f"{path}?queue=not-a-queue", headers=AUTH)
    assert response.status == 409
    body = await response.json()
    assert "'not-a-queue'" in body["error"]
    assert "holds a string" in body["error"]
    assert [f["field"] for f in body["fields"]] == ["queue"]
    assert "unreachable" not in body["error"]


async def test_enqueue_to_a_queue_whose_key_holds_another_type_is_409(api: TestClient, harness: Harness) -> None:  # type: ignore[type-arg]
    await reply(harness.redis.hset("a-hash", "k", "v"))
    body = {"task": "add", "payload": {"a": 1, "b": 2}, "queue": "a-hash"}
    response = await api.post("/v1/jobs", json=body, headers=AUTH)
    assert response.status in (409, 422)  # 422 when the producer sees it first
    answer = await response.json()
    assert "queue 'a-hash'" in answer["error"]
    assert [f["field"] for f in answer["fields"]] == ["queue"]
    assert await harness.redis.keys("*") == [b"a-hash"]


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
@pytest.mark.parametrize("path", ["/v1/dead-letters/replay", "/v1/dead-letters/purge"])
async def test_batch_routes_answer_other_methods_with_405_allowing_only_post(
    api: TestClient,  # type: ignore[type-arg]
    path: str,
    method: str,
) -> None:
    response = await getattr(api, method)(path, headers=AUTH)
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert (await response.json())["error"] == "Method Not Allowed"


async def test_405s_list_the_methods_of_their_path(api: TestClient) -> None:  # type: ignore[type-arg]
    replay_one = await api.get("/v1/dead-letters/x/replay", headers=AUTH)
    assert (replay_one.status, replay_one.headers["Allow"]) == (405, "POST")
    one = await api.put("/v1/dead-letters/x", headers=AUTH)
    assert (one.status, set(one.headers["Allow"].split(","))) == (405, {"DELETE", "GET", "HEAD"})


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("/v1/running?limit=501", "limit must be a whole number from 1 to 500, got '501'"),
        ("/v1/running?limit=0", "limit must be a whole number from 1 to 500, got '0'"),
        ("/v1/running?limit=2.5", "limit must be a whole number from 1 to 500, got '2.5'"),
        ("/v1/dead-letters?limit=1001", "limit must be a whole number from 1 to 1000, got '1001'"),
        ("/v1/jobs/x/result?wait=61", "wait must be a number of seconds from 0 to 60, got '61'"),
        ("/v1/jobs/x/result?wait=%D9%A3", "wait must be a number of seconds from 0 to 60"),
    ],
)
async def test_query_bounds_are_refused_with_a_message_in_the_right_unit(
    api: TestClient,  # type: ignore[type-arg]
    query: str,
    message: str,
) -> None:
    response = await api.get(query, headers=AUTH)
    assert response.status == 422
    body = await response.json()
    assert body["error"].startswith(message)
    assert "seconds" not in body["error"] or "wait" in body["error"]
