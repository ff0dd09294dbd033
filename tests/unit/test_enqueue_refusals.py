"""Bad producer input is refused with a typed error naming the field, and a refused call writes nothing.

The fuzz test drives enqueue and enqueue_many with arguments drawn by hypothesis (deterministic,
bounded) on fakeredis: either every job is created and decodes, or a JobqError is raised and Redis
holds no key at all.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import orjson
import pytest
from arq.connections import ArqRedis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from tests.unit.harness import START_S
from worker import JobContext, JobRequest, task
from worker.client.producer import Client
from worker.errors import (
    EnvelopeTooLarge,
    InvalidJobOptions,
    InvalidPayload,
    InvalidQueueName,
    JobqError,
    SettingsError,
)
from worker.protocol.connection import codec_for
from worker.settings import JobqSettings, load_settings
from worker.taskdef.registry import TaskRegistry


class FreeIn(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict)
    n: int = 0
    x: float = 0.0
    tags: list[str] = Field(default_factory=list)


class Nested(BaseModel):
    inner: FreeIn = Field(default_factory=FreeIn)
    blob: bytes = b""


@task
async def free(ctx: JobContext, payload: FreeIn) -> None:
    return None


@task
async def nested(ctx: JobContext, payload: Nested) -> None:
    return None


def new_client(redis: ArqRedis, **overrides: Any) -> Client:
    config = JobqSettings(task_modules=[], **overrides)
    codec = codec_for(config)
    redis.job_serializer, redis.job_deserializer = codec.dumps, codec.loads
    return Client(config, registry=TaskRegistry([free, nested]), redis=redis, clock=lambda: START_S)


@pytest.fixture
def client(fake_redis: ArqRedis) -> Client:
    return new_client(fake_redis)


async def stored(client: Client) -> list[bytes]:
    return sorted(await client.redis.keys("*"))


# --- The cases of the issue, one by one ----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field", "problem"),
    [
        ({"n": 2**70}, "n", "integers must fit in 64 bits"),
        ({"data": {"big": -(2**64)}}, "data.big", "integers must fit in 64 bits"),
        ({"data": {"raw": b"\xff\xfe"}}, "data.raw", "bytes must be UTF-8"),
        ({"data": {"ratio": float("nan")}}, "data.ratio", "NaN and infinity"),
        ({"data": {"deep": [1, {"x": float("-inf")}]}}, "data.deep.1.x", "NaN and infinity"),
        ({"x": float("inf")}, "x", "NaN and infinity"),
    ],
)
async def test_payloads_json_cannot_carry_are_refused_naming_the_field(
    client: Client, payload: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(InvalidPayload) as info:
        await client.enqueue("free", payload)
    assert info.value.fields == [field]
    assert problem in str(info.value)
    assert await stored(client) == []


async def test_bytes_that_are_not_utf8_in_a_nested_model_are_named(client: Client) -> None:
    with pytest.raises(InvalidPayload) as info:
        await client.enqueue(nested, {"inner": {"data": {"k": b"\x80"}}})
    assert info.value.fields == ["inner.data.k"]
    with pytest.raises(InvalidPayload) as info:
        await client.enqueue(nested, {"blob": b"\x80"})
    assert info.value.fields == ["blob"]
    assert await stored(client) == []


@pytest.mark.parametrize("name", [["free"], 5, None, b"free"])
async def test_a_task_that_is_not_a_name_is_refused(client: Client, name: Any) -> None:
    with pytest.raises(InvalidJobOptions, match="task must be a TaskDef or a registered task name") as info:
        await client.enqueue(name, {})
    assert info.value.field == "task"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"defer_by": 1e16}, "defer_by"),
        ({"defer_by": 10**400}, "defer_by"),
        ({"defer_by": timedelta.max}, "defer_by"),
        ({"defer_until": datetime.max.replace(tzinfo=UTC)}, "defer_until"),
        ({"timeout_s": 10**400}, "timeout_s"),
        ({"timeout_s": 1e300}, "timeout_s"),
        ({"job_id": 7}, "job_id"),
    ],
)
async def test_options_beyond_what_redis_takes_are_refused_before_writing(
    client: Client, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidJobOptions) as info:
        await client.enqueue("free", {}, **options)
    assert info.value.field == field
    assert field in str(info.value)
    assert await stored(client) == []


async def test_the_latest_schedule_allowed_is_written_and_read_back(client: Client) -> None:
    handle = await client.enqueue("free", {}, defer_until=datetime(9999, 12, 31, tzinfo=UTC))
    assert (await handle.status()).scheduled_at == datetime(9999, 12, 31, tzinfo=UTC)


async def test_a_batch_refused_at_its_last_item_writes_nothing(client: Client) -> None:
    requests = [JobRequest("free", {"n": i}) for i in range(5)] + [JobRequest("free", {}, defer_by=1e16)]
    with pytest.raises(InvalidJobOptions, match=r"defer_by .*\(batch item 5\)"):
        await client.enqueue_many(requests)
    assert await stored(client) == []


def test_a_huge_job_expiry_is_refused_naming_the_setting() -> None:
    # Refused by the settings themselves, before any client exists (durations are at most ten years).
    with pytest.raises(SettingsError, match="JOBQ_JOB_EXPIRES_S"):
        load_settings(job_expires_s=1e300)


async def test_an_envelope_over_the_limit_is_refused_naming_size_and_setting(fake_redis: ArqRedis) -> None:
    client = new_client(fake_redis, max_envelope_bytes=4096)
    await client.enqueue("free", {"data": {"text": "x" * 3000}})  # under the limit
    await fake_redis.flushall()
    with pytest.raises(EnvelopeTooLarge) as info:
        await client.enqueue_many([JobRequest("free", {}), JobRequest("free", {"data": {"text": "x" * 5000}})])
    assert (info.value.limit, info.value.item, info.value.task) == (4096, 1, "free")
    assert info.value.size > 5000
    assert f"{info.value.size} bytes, more than JOBQ_MAX_ENVELOPE_BYTES=4096" in str(info.value)
    assert "batch item 1" in str(info.value)
    assert await stored(client) == []


async def test_a_queue_whose_key_holds_another_type_is_refused_by_the_script_writing_nothing(client: Client) -> None:
    await client.redis.hset("orders", "x", "1")  # type: ignore[misc]  # redis-py types it sync or async
    with pytest.raises(InvalidQueueName, match="'orders' names a Redis hash, not a queue") as info:
        await client.enqueue_many([JobRequest("free", {}, queue="orders"), JobRequest("free", {}, queue="orders")])
    assert info.value.field == "queue"
    assert await stored(client) == [b"orders"]


# --- Fuzz ---------------------------------------------------------------------------------------

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "é😀", "\x00"]),
    st.binary(max_size=4),
)
free_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
payloads = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "data": st.dictionaries(st.text(max_size=4), free_values, max_size=3),
            "n": st.integers(min_value=-(2**66), max_value=2**66) | st.floats() | st.text(max_size=3),
            "x": st.floats() | st.integers(min_value=-(2**1030), max_value=2**1030),
            "tags": st.lists(st.text(max_size=3) | st.binary(max_size=2), max_size=3),
        },
    ),
    free_values,
)
numbers = st.one_of(
    st.floats(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([1e16, 9.3e18, 2.6e11, 2.5e11, 10**400, True]),
    st.timedeltas(),
)
options = st.fixed_dictionaries(
    {},
    optional={
        "job_id": st.none() | st.text(max_size=6) | st.integers(),
        "defer_by": numbers,
        "defer_until": st.datetimes(timezones=st.just(UTC)) | st.datetimes(),
        "timeout_s": numbers,
        "queue": st.none()
        | st.text(max_size=6)
        | st.sampled_from(["", "jobq:dlq:arq:queue", "arq:abort", "q:index", 0, False, [], {}]),
    },
)
tasks = st.sampled_from(["free", free, "nested", "missing", ["free"], 3])
calls = st.lists(st.tuples(tasks, payloads, options), min_size=1, max_size=4)


async def one_call(batch: list[tuple[Any, Any, dict[str, Any]]], many: bool) -> None:
    redis = ArqRedis(pool_or_conn=fakeredis.aioredis.FakeRedis(server=fakeredis.FakeServer()).connection_pool)
    client = new_client(redis)
    try:
        if many:
            handles = await client.enqueue_many(JobRequest(t, p, **o) for t, p, o in batch)
        else:
            t, p, o = batch[0]
            handles = [await client.enqueue(t, p, **o)]
    except JobqError:
        assert await redis.keys("*") == []  # a refused call writes nothing
    else:
        for handle in handles:
            if handle.created:
                body = client.redis.job_deserializer(await redis.get(f"arq:job:{handle.job_id}"))  # type: ignore[misc]
                assert body["f"] in ("free", "nested")
                assert orjson.dumps(body["a"])  # what a worker reads back, written again
                assert all(math.isfinite(s) for _, s in await redis.zrange(handle.queue_name, 0, -1, withscores=True))
                assert await redis.zscore(handle.queue_name, handle.job_id) is not None
                await handle.status()  # the job's timestamps read back as datetimes
    finally:
        await redis.aclose(close_connection_pool=True)


@settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=calls, many=st.booleans())
def test_fuzzed_producer_calls_succeed_or_raise_a_jobq_error_writing_nothing(
    batch: list[tuple[Any, Any, dict[str, Any]]], many: bool
) -> None:
    asyncio.run(one_call(batch, many))
