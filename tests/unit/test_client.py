"""The producer client: validation before any write, arq's key layout, idempotent ids, batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests import sample_tasks
from tests.unit.harness import Harness
from worker import JobRequest, JobStatus
from worker.client.producer import record_ttl_ms
from worker.errors import InvalidJobOptions, InvalidPayload, UnknownTaskError
from worker.protocol.connection import codec_for
from worker.protocol.enqueue_script import ENQUEUE_KEY_PREFIXES
from worker.protocol.scripts import Scripts


async def keys(h: Harness) -> list[bytes]:
    """Every key but the short-lived records of the enqueue calls (see test_enqueue_records_each_call_briefly)."""
    return sorted(k for k in await h.redis.keys("*") if not k.startswith(b"jobq:enqueued:"))


async def test_enqueue_writes_arqs_layout(harness: Harness) -> None:
    handle = await harness.client.enqueue(sample_tasks.add, {"a": 1, "b": 2}, job_id="j1")
    assert handle.created
    assert await keys(harness) == [b"arq:job:j1", b"arq:queue", b"jobq:marker:arq:queue", b"jobq:queues"]
    assert await harness.redis.zscore("arq:queue", "j1") == harness.clock.ms()
    assert await harness.redis.zscore("jobq:marker:arq:queue", "m") == harness.clock.ms()  # wakes one worker
    envelope = orjson.loads(await harness.redis.get("arq:job:j1"))
    assert envelope["v"] == 1
    body: dict[str, Any] = {"t": None, "f": "add", "a": [{"a": 1, "b": 2}], "k": {}, "et": harness.clock.ms()}
    assert envelope["d"] == {**body, "id": "j1", "q": "arq:queue"}  # bound to the job id and queue
    ttl_ms = await harness.redis.pttl("arq:job:j1")
    assert 0 < ttl_ms <= harness.settings.job_expires_s * 1000


async def test_enqueue_by_name_uses_the_registry(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", sample_tasks.AddIn(a=1, b=1))
    assert (await handle.status()).status == JobStatus.QUEUED


async def test_invalid_payload_names_the_field_and_writes_nothing(harness: Harness) -> None:
    with pytest.raises(InvalidPayload) as info:
        await harness.client.enqueue("add", {"a": "one", "b": 2})
    assert info.value.fields == ["a"]
    assert "a: Input should be a valid integer" in str(info.value)
    assert await keys(harness) == []


async def test_missing_field_is_named(harness: Harness) -> None:
    with pytest.raises(InvalidPayload) as info:
        await harness.client.enqueue("add", {"b": 2})
    assert info.value.fields == ["a"]
    assert "Field required" in str(info.value)


async def test_non_finite_number_is_refused_with_its_field(harness: Harness) -> None:
    with pytest.raises(InvalidPayload) as info:
        await harness.client.enqueue("slow", {"seconds": float("inf")})
    assert info.value.fields == ["seconds"]
    assert await keys(harness) == []


async def test_unknown_task_is_a_typed_error_that_writes_nothing(harness: Harness) -> None:
    with pytest.raises(UnknownTaskError, match="unknown task 'nope'"):
        await harness.client.enqueue("nope", {})
    assert await keys(harness) == []


async def test_same_job_id_is_enqueued_once(harness: Harness) -> None:
    first = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="once")
    second = await harness.client.enqueue("add", {"a": 9, "b": 9}, job_id="once")
    assert (first.created, second.created) == (True, False)
    assert await harness.redis.zcard("arq:queue") == 1
    envelope = orjson.loads(await harness.redis.get("arq:job:once"))
    assert envelope["d"]["a"] == [{"a": 1, "b": 1}]  # the first payload stands


async def test_job_id_is_refused_while_its_result_exists(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="done")
    await harness.run_due()
    again = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="done")
    assert not again.created
    assert await harness.redis.zcard("arq:queue") == 0


async def test_defer_by_and_defer_until_set_the_score(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="by", defer_by=timedelta(seconds=30))
    until = datetime.fromtimestamp(harness.clock() + 90, tz=UTC)
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="until", defer_until=until)
    assert await harness.redis.zscore("arq:queue", "by") == harness.clock.ms() + 30_000
    assert await harness.redis.zscore("arq:queue", "until") == harness.clock.ms() + 90_000
    # The job key outlives its scheduled time by job_expires_s.
    assert await harness.redis.pttl("arq:job:until") > harness.settings.job_expires_s * 1000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"defer_by": 1, "defer_until": datetime.now(UTC)}, "not both"),
        ({"defer_until": datetime(2030, 1, 1)}, "timezone-aware"),  # a naive datetime is the point
        ({"defer_by": -5}, "non-negative"),
        ({"defer_by": float("nan")}, "non-negative"),
        ({"timeout_s": 0}, "timeout_s must be a positive number of seconds for task 'add'"),
        ({"timeout_s": float("inf")}, "timeout_s must be a positive number of seconds"),
        ({"job_id": ""}, "1 to 256 characters"),
        ({"job_id": "has space"}, "spaces or control characters"),
        ({"job_id": "x" * 257}, "1 to 256 characters"),
        ({"queue": " "}, "queue must be 1 to 200 characters"),
    ],
)
async def test_invalid_options_are_refused_before_writing(
    harness: Harness, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidJobOptions, match=message):
        await harness.client.enqueue("add", {"a": 1, "b": 1}, **options)
    assert await keys(harness) == []


async def test_timeout_override_is_carried_in_the_reserved_kwarg(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="t", timeout_s=2.5)
    envelope = orjson.loads(await harness.redis.get("arq:job:t"))
    assert envelope["d"]["k"] == {"_jobq": {"timeout_s": 2.5}}


async def test_enqueue_on_another_queue(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, queue="other")
    assert handle.queue_name == "other"
    assert await harness.redis.zcard("other") == 1
    assert (await handle.status()).status == JobStatus.QUEUED


async def test_enqueue_many_writes_in_one_script_call_per_chunk(harness: Harness) -> None:
    script = Scripts.of(harness.client.redis)["enqueue"]
    before = script.calls
    requests = [JobRequest("add", {"a": i, "b": 0}, job_id=f"m{i}") for i in range(2500)]
    handles = await harness.client.enqueue_many(requests)
    assert script.calls - before == 3  # chunks of 1000
    assert [h.job_id for h in handles] == [f"m{i}" for i in range(2500)]
    assert all(h.created for h in handles)
    assert await harness.redis.zcard("arq:queue") == 2500


async def test_enqueue_many_validates_every_item_before_writing(harness: Harness) -> None:
    requests = [JobRequest("add", {"a": 1, "b": 1}), JobRequest("add", {"a": 1, "b": -1})]
    with pytest.raises(InvalidPayload) as info:
        await harness.client.enqueue_many(requests)
    assert info.value.item == 1
    assert info.value.fields == ["b"]
    assert "batch item 1" in str(info.value)
    assert await keys(harness) == []


async def test_enqueue_many_is_idempotent_per_id(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="dup")
    handles = await harness.client.enqueue_many(
        [JobRequest("add", {"a": 1, "b": 1}, job_id="dup"), JobRequest("add", {"a": 2, "b": 2}, job_id="new")]
    )
    assert [h.created for h in handles] == [False, True]


async def test_handles_of_a_batch_use_the_clients_clock_and_connection(harness: Harness) -> None:
    handles = await harness.client.enqueue_many([JobRequest("add", {"a": i, "b": 1}, defer_by=10) for i in range(2)])
    assert [(await h.status()).status for h in handles] == [JobStatus.DEFERRED] * 2
    harness.clock.advance(10)
    assert [(await h.status()).status for h in handles] == [JobStatus.QUEUED] * 2
    assert await harness.run_due() == 2
    assert [(await h.result(timeout_s=1)).total for h in handles] == [1, 2]
    assert handles[0].queue_name == harness.settings.queue_name
    assert "add" in repr(handles[0])


async def test_status_moves_from_deferred_to_queued_with_time(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, defer_by=10)
    assert (await handle.status()).status == JobStatus.DEFERRED
    harness.clock.advance(10)
    assert (await handle.status()).status == JobStatus.QUEUED


async def test_unknown_job_is_not_found(harness: Harness) -> None:
    assert (await harness.client.job("missing").status()).status == JobStatus.NOT_FOUND


async def test_enqueue_many_creates_a_job_id_repeated_in_the_batch_once(harness: Harness) -> None:
    requests = [JobRequest("add", {"a": i, "b": 0}, job_id="twice") for i in range(2)]
    handles = await harness.client.enqueue_many(requests)
    assert [h.created for h in handles] == [True, False]
    assert await harness.redis.zcard("arq:queue") == 1


async def test_enqueue_many_writes_each_queue_in_order(harness: Harness) -> None:
    requests = [JobRequest("add", {"a": i, "b": 0}, job_id=f"q{i}", queue="other" if i % 2 else None) for i in range(4)]
    handles = await harness.client.enqueue_many(requests)
    assert [(h.job_id, h.queue_name) for h in handles] == [
        ("q0", "arq:queue"), ("q1", "other"), ("q2", "arq:queue"), ("q3", "other"),
    ]  # fmt: skip
    assert await harness.redis.zrange("other", 0, -1) == [b"q1", b"q3"]


async def test_a_new_job_clears_an_abort_marker_left_under_its_id(harness: Harness) -> None:
    await harness.redis.set("jobq:abort:reused", "1")
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="reused")
    assert await harness.redis.exists("jobq:abort:reused") == 0


@pytest.mark.parametrize("signing_key", [None, "k" * 32])
async def test_envelopes_reach_redis_byte_for_byte(make_harness: Any, signing_key: str | None) -> None:
    # The enqueue script gets the jobs as one JSON argument: quotes, escapes, NUL and non-ASCII survive it.
    h = make_harness(signing_key=signing_key)
    note = 'quote " backslash \\ nul \x00 tab \t é 😀 \u2028 {"json": [1]}'
    await h.client.enqueue("retry_later", {"note": note}, job_id="bytes")
    codec = codec_for(h.settings)  # the envelope codec the producer and the worker use
    body = codec.loads(await h.redis.get("arq:job:bytes"))
    assert body["a"] == [{"note": note, "after_s": 0.0}]
    await h.run_due()  # first try: retry at once
    await h.run_due()  # second try: succeeds; the batched finish writes its result the same way
    stored = codec.loads(await h.redis.get("arq:result:bytes"))
    assert (stored["s"], stored["r"], stored["a"]) == (True, 2, [{"note": note, "after_s": 0.0}])


async def test_enqueue_records_each_call_briefly(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="r1")
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="r1")
    records = sorted(await harness.redis.keys("jobq:enqueued:*"))
    assert [await harness.redis.get(k) for k in records] in ([b"1", b"0"], [b"0", b"1"])  # one per call
    ttl_ms = record_ttl_ms(harness.settings)
    assert all(0 < ttl <= ttl_ms for ttl in [await harness.redis.pttl(k) for k in records])
    assert ttl_ms > 4 * (harness.settings.redis_socket_timeout_s + harness.settings.redis_connect_timeout_s) * 1000


async def test_a_resent_enqueue_answers_what_the_first_send_did_and_writes_nothing(harness: Harness) -> None:
    # What redis-py does when the reply is lost: the same script, keys and arguments again.
    script = Scripts.of(harness.redis)["enqueue"]
    packed = orjson.dumps(["fresh", "5", "60000", '{"v":1}', "0", "taken", "5", "60000", '{"v":1}', "1"])
    await harness.redis.set("arq:result:taken", "done")
    keys = ["arq:queue", "jobq:enqueued:req-1"]
    args: list[str | bytes | int] = ["jobq:marker:arq:queue", packed, 60000, ENQUEUE_KEY_PREFIXES]
    assert await script(keys=keys, args=args) == [1, 0]
    await harness.redis.delete("arq:job:fresh")  # meanwhile a worker ran the job
    await harness.redis.zrem("arq:queue", "fresh")
    assert await script(keys=keys, args=args) == [1, 0]  # the same answer: created by this call, and not created again
    assert await harness.redis.exists("arq:job:fresh") == 0
    assert await harness.redis.zcard("arq:queue") == 0
