"""The API keeps the promises of its OpenAPI document: this walks every operation of ``/openapi.json`` and
checks that each documented bound is enforced (inside: accepted, outside: 422 naming the parameter or
field), that every status answered is documented for its operation, and that a method a path does not
have is a 405 whose ``Allow`` lists the methods the document gives that path."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jsonschema
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.harness import Harness
from tests.unit.test_api import AUTH, TOKEN
from worker.http.api import create_app
from worker.observability.metrics import Metrics

METHODS = ("get", "put", "post", "delete", "patch")
#: A body each body-taking operation accepts, by the name of its schema.
BODIES: dict[str, dict[str, Any]] = {
    "EnqueueBody": {"task": "add", "payload": {"a": 1, "b": 2}},
    "DeadLetterSelection": {"all": True, "confirm": True},
    "WorkflowBody": {"workflow": {"chain": [{"task": "add", "payload": {"a": 1, "b": 2}}]}},
}
#: Fields whose values are further restricted than their schema says (a registered task name): only the
#: refusals of values outside the documented bounds are checked.
NAMES = {"task"}
#: Query numbers as JSON writes them: what the document's "number" and "integer" mean in a query string.
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as client:
        yield client


async def document(client: TestClient) -> dict[str, Any]:  # type: ignore[type-arg]
    doc: dict[str, Any] = await (await client.get("/openapi.json")).json()
    return doc


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def concrete(path: str) -> str:
    return path.replace("{job_id}", "c1").replace("{workflow_id}", "w1")


def body_of(op: dict[str, Any]) -> dict[str, Any] | None:
    if "requestBody" not in op:
        return None
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return dict(BODIES[ref.rsplit("/", 1)[1]])


async def call(
    client: TestClient,  # type: ignore[type-arg]
    method: str,
    path: str,
    op: dict[str, Any],
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
) -> ClientResponse:
    """Call one operation and check that its status is one the document lists for it."""
    if body is None:
        body = body_of(op)
    response = await client.request(method, concrete(path), params=query or {}, json=body, headers=AUTH)
    assert str(response.status) in op["responses"], (method, path, query, body, response.status, await response.text())
    assert response.content_type == "application/json"
    return response


async def named(response: ClientResponse, field: str) -> bool:
    return response.status == 422 and field in [f["field"] for f in (await response.json())["fields"]]


def scalar(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an ``anyOf`` (pydantic's ``X | None``), or the schema itself."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return dict(branch)
    return schema


def outside_and_inside(schema: dict[str, Any]) -> Iterator[tuple[Any, bool]]:
    """Values on each side of every bound ``schema`` documents: ``(value, allowed)``."""
    kind = schema.get("type")
    if kind in ("integer", "number"):
        step = 1 if kind == "integer" else 0.001
        if "minimum" in schema:
            yield schema["minimum"], True
            yield schema["minimum"] - step, False
        if "exclusiveMinimum" in schema:
            yield schema["exclusiveMinimum"], False
            yield schema["exclusiveMinimum"] + step, True
        if "maximum" in schema:
            yield schema["maximum"], True
            yield schema["maximum"] + step, False
        if kind == "integer":
            yield (schema.get("minimum", 0) + 0.5), False
    if kind == "string":
        if schema.get("minLength", 0) > 0:
            yield "x" * (schema["minLength"] - 1), False
            yield "x" * schema["minLength"], True
        if "maxLength" in schema:
            yield "x" * (schema["maxLength"] + 1), False


async def test_every_documented_bound_of_a_query_parameter_is_enforced(api: TestClient) -> None:  # type: ignore[type-arg]
    doc = await document(api)
    checked = 0
    for path, method, op in operations(doc):
        for param in op["parameters"]:
            if param["in"] != "query":
                continue
            for value, allowed in outside_and_inside(param["schema"]):
                response = await call(api, method, path, op, query={param["name"]: str(value)})
                refused = await named(response, param["name"])
                assert refused is not allowed, (method, path, param["name"], value, await response.text())
                checked += 1
    assert checked >= 20  # wait and limit on five routes, the queue name on eleven


async def test_every_documented_bound_of_a_body_field_is_enforced(api: TestClient) -> None:  # type: ignore[type-arg]
    doc = await document(api)
    schemas = doc["components"]["schemas"]
    checked = 0
    for path, method, op in operations(doc):
        body = body_of(op)
        if body is None:
            continue
        model = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for field, schema in schemas[model]["properties"].items():
            for value, allowed in outside_and_inside(scalar(schema)):
                if allowed and field in NAMES:
                    continue
                response = await call(api, method, path, op, body={**body, field: value})
                refused = await named(response, field)
                assert refused is not allowed, (method, path, field, value, await response.text())
                checked += 1
    assert checked >= 5


async def test_bodies_that_are_not_json_get_the_documented_400(api: TestClient) -> None:  # type: ignore[type-arg]
    for path, method, op in operations(await document(api)):
        if "requestBody" in op:
            response = await api.request(method, concrete(path), data=b"{nope", headers=AUTH)
            assert response.status == 400
            assert "400" in op["responses"]


async def test_calls_without_a_token_get_the_documented_401(api: TestClient) -> None:  # type: ignore[type-arg]
    for path, method, op in operations(await document(api)):
        response = await api.request(method, concrete(path))
        assert response.status == 401
        assert "401" in op["responses"]


async def test_a_method_a_path_lacks_is_405_listing_the_documented_ones(api: TestClient) -> None:  # type: ignore[type-arg]
    doc = await document(api)
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item}
        for method in sorted(set(METHODS) - set(item)):
            response = await api.request(method, concrete(path), headers=AUTH)
            assert response.status == 405, (method, path)
            allowed = set(response.headers["Allow"].split(",")) - {"HEAD"}  # aiohttp adds HEAD to each GET
            assert allowed == documented, (method, path)


def query_number_allowed(text: str, schema: dict[str, Any]) -> bool:
    """Whether the document allows ``text`` for a numeric query parameter with ``schema``."""
    if not NUMBER.fullmatch(text):
        return False
    value = float(text)
    if schema["type"] == "integer":
        if not re.fullmatch(r"-?(?:0|[1-9][0-9]*)", text):
            return False
        value = int(text)
    if not math.isfinite(value):
        return False
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return False
    return True


numeric_texts = st.one_of(
    st.integers(-2000, 2000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(alphabet="0123456789.-+eE ٣", max_size=6),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=numeric_texts, pick=st.integers(0, 1000))
async def test_numeric_query_parameters_accept_exactly_what_the_document_allows(
    api: TestClient,  # type: ignore[type-arg]
    text: str,
    pick: int,
) -> None:
    doc = await document(api)
    numeric = [
        (path, method, op, p)
        for path, method, op in operations(doc)
        for p in op["parameters"]
        if p["in"] == "query" and p["schema"].get("type") in ("integer", "number")
    ]
    path, method, op, param = numeric[pick % len(numeric)]
    response = await call(api, method, path, op, query={param["name"]: text})
    assert (await named(response, param["name"])) is not query_number_allowed(text, param["schema"]), text


@pytest.mark.parametrize("status", ["400", "401", "404", "408", "409", "413", "422", "503"])
async def test_every_error_status_documented_is_an_error_object(api: TestClient, status: str) -> None:  # type: ignore[type-arg]
    doc = await document(api)
    for _, _, op in operations(doc):
        if status in op["responses"]:
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}
