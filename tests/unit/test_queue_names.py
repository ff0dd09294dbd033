"""Queue names are checked wherever they enter: a name that is not a string, empty, or one of jobq's or arq's
own keys is refused (a typed InvalidQueueName naming the field), and nothing is written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.harness import Harness
from worker import JobRequest
from worker.client.sync import SyncClient
from worker.errors import InvalidQueueName, SettingsError
from worker.http.api import create_app
from worker.observability.metrics import Metrics
from worker.protocol.keys import check_queue_name
from worker.settings import JobqSettings, load_settings

TOKEN = "queue-names-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RESERVED = ["jobq:dlq:arq:queue", "jobq:anything", "arq:job:x", "arq:in-progress:x", "arq:retry:x", "arq:result:x",
            "arq:abort", "orders:index", "arq:queue:health-check"]  # fmt: skip
MALFORMED = ["", " ", " padded", "tab\there", "new\nline", "x" * 201]
NOT_STRINGS: list[Any] = [0, False, [], {}, b"arq:queue", 1.5]
BAD = RESERVED + MALFORMED + NOT_STRINGS


async def keys(h: Harness) -> list[bytes]:
    return sorted(await h.redis.keys("*"))


@pytest.mark.parametrize("name", ["arq:queue", "orders", "emails:high", "queue with spaces", "é", "x" * 200])
def test_ordinary_names_are_queue_names(name: str) -> None:
    assert check_queue_name(name) == name


@pytest.mark.parametrize("name", BAD, ids=repr)
async def test_the_client_refuses_a_bad_queue_and_writes_nothing(harness: Harness, name: Any) -> None:
    with pytest.raises(InvalidQueueName) as info:
        await harness.client.enqueue("add", {"a": 1, "b": 1}, queue=name)
    assert info.value.field == "queue"
    assert str(info.value).startswith("queue ")
    with pytest.raises(InvalidQueueName, match=r"\(batch item 1\)"):
        await harness.client.enqueue_many(
            [JobRequest("add", {"a": 1, "b": 1}), JobRequest("add", {"a": 1, "b": 1}, queue=name)]
        )
    with pytest.raises(InvalidQueueName):
        harness.client.job("some-job", queue=name)
    with pytest.raises(InvalidQueueName):
        await harness.client.abort("some-job", queue=name)
    assert await keys(harness) == []


def test_the_sync_client_refuses_a_bad_queue_before_connecting(make_settings: Any) -> None:
    with SyncClient(make_settings(redis_url="redis://127.0.0.1:9/0")) as client:  # nothing listens there
        names: list[Any] = ["jobq:dlq:arq:queue", "", 0]
        for name in names:
            with pytest.raises(InvalidQueueName):
                client.enqueue("add", {"a": 1, "b": 1}, queue=name)
            with pytest.raises(InvalidQueueName):
                client.job("x", queue=name)


@pytest.mark.parametrize("name", RESERVED + MALFORMED, ids=repr)
def test_settings_refuse_a_bad_queue_name_naming_the_variable(name: str) -> None:
    with pytest.raises(SettingsError, match="JOBQ_QUEUE_NAME="):
        load_settings(queue_name=name)


def test_the_default_queue_name_stays_valid() -> None:
    assert JobqSettings().queue_name == "arq:queue"


@pytest.fixture
async def http(harness: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as client:
        yield client


@pytest.mark.parametrize("name", RESERVED + MALFORMED + [0, False, []], ids=repr)
async def test_the_api_refuses_a_bad_queue_in_a_body_with_422(http: TestClient, harness: Harness, name: Any) -> None:  # type: ignore[type-arg]
    response = await http.post(
        "/v1/jobs", json={"task": "add", "payload": {"a": 1, "b": 1}, "queue": name}, headers=AUTH
    )
    assert response.status == 422
    assert "queue" in [f["field"] for f in (await response.json())["fields"]]
    assert await keys(harness) == []


@pytest.mark.parametrize("path", ["/v1/jobs/x", "/v1/jobs/x/result", "/v1/stats", "/v1/running", "/v1/dead-letters"])
@pytest.mark.parametrize("name", ["jobq:dlq:arq:queue", "arq:job:x", "", " x"], ids=repr)
async def test_the_api_refuses_a_bad_queue_parameter_with_422(http: TestClient, path: str, name: str) -> None:  # type: ignore[type-arg]
    response = await http.get(path, params={"queue": name}, headers=AUTH)
    assert response.status == 422
    assert [f["field"] for f in (await response.json())["fields"]] == ["queue"]


async def test_the_api_refuses_an_envelope_over_the_limit_with_422(make_harness: Any) -> None:
    harness = make_harness(max_envelope_bytes=2048)
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as http:
        body = {"task": "retry_later", "payload": {"note": "x" * 4000}}
        response = await http.post("/v1/jobs", json=body, headers=AUTH)
        assert response.status == 422
        answer = await response.json()
        assert "JOBQ_MAX_ENVELOPE_BYTES=2048" in answer["error"]
        assert [f["field"] for f in answer["fields"]] == ["payload"]
    assert await keys(harness) == []


def test_reserved_prefixes_are_arqs_own_key_prefixes() -> None:
    # worker.queue_names spells arq's prefixes out so the settings load no arq; they must stay arq's.
    from arq import constants

    from worker.queue_names import RESERVED_QUEUE_PREFIXES, RESERVED_QUEUE_SUFFIXES

    arq_prefixes = {
        constants.job_key_prefix,
        constants.in_progress_key_prefix,
        constants.retry_key_prefix,
        constants.result_key_prefix,
        constants.abort_jobs_ss,
    }
    assert arq_prefixes <= set(RESERVED_QUEUE_PREFIXES)
    assert constants.health_check_key_suffix in RESERVED_QUEUE_SUFFIXES


def test_jobs_keys_use_arqs_own_prefixes() -> None:
    # worker.protocol.keys spells arq's prefixes out so that task modules load no arq; they must stay arq's.
    from arq import constants

    from worker.protocol import keys

    assert keys.job_key_prefix == constants.job_key_prefix
    assert keys.in_progress_key_prefix == constants.in_progress_key_prefix
    assert keys.retry_key_prefix == constants.retry_key_prefix
    assert keys.result_key_prefix == constants.result_key_prefix
