"""Envelopes that decode but could not be handled are refused by the codec, on both ends (issue 12, items 2 and 3).

The worker dead-letters whatever the codec refuses on read ("unable to decode job: ..."), and the
producer gets the same bounds as a typed error naming the field when it writes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.harness import Harness
from worker import DeadLetterStore
from worker.errors import EnvelopeFieldError, EnvelopeVersionError, JobqError, SerializationError, SignatureError
from worker.protocol.envelope_bounds import MAX_DEPTH, MAX_TIME_MS, MAX_TRY
from worker.protocol.serialization import EnvelopeCodec, dumps, loads

JOB: dict[str, Any] = {"t": None, "f": "add", "a": [{"a": 1, "b": 2}], "k": {}, "et": 1_700_000_000_000}
BOUND = {"job_id": "j1", "queue": "arq:queue"}


def envelope(body: object) -> bytes:
    return orjson.dumps({"v": 1, "d": body})


def raw_envelope(body_json: str) -> bytes:
    """An unsigned envelope around body text that orjson could not write itself (floats like 1e300 stay floats)."""
    return b'{"v":1,"d":' + body_json.encode() + b"}"


def nested(levels: int) -> Any:
    value: Any = 0
    for i in range(levels):
        value = [value] if i % 2 else {"x": value}
    return value


# --- item 2: decoded but unhandleable ------------------------------------------------------------


def test_a_job_without_a_task_name_is_refused_when_read_as_a_job() -> None:
    body = {k: v for k, v in JOB.items() if k != "f"}
    with pytest.raises(EnvelopeFieldError, match=r"malformed job body: f \(task name\) must be a string") as info:
        EnvelopeCodec().loads_job(envelope(body), **BOUND)
    assert info.value.field == "f"


@pytest.mark.parametrize("missing", ["a", "k", "et"])
def test_a_job_must_carry_every_field_the_worker_reads(missing: str) -> None:
    body = {k: v for k, v in JOB.items() if k != missing}
    with pytest.raises(EnvelopeFieldError, match="malformed job body") as info:
        EnvelopeCodec().loads_job(envelope(body), **BOUND)
    assert info.value.field == missing


@pytest.mark.parametrize(
    "et",
    ["1e300", "-1e300", "1e20", "9.3e18", "9300000000000000000", "18446744073709551615", "-1", "1.5", "true", "null"],
)
def test_enqueue_times_outside_what_can_be_written_back_are_refused(et: str) -> None:
    raw = raw_envelope(f'{{"t":null,"f":"add","a":[],"k":{{}},"et":{et}}}')
    with pytest.raises(EnvelopeFieldError, match=r"et \(enqueue time in ms\) must be an integer from 0 to") as info:
        loads(raw)
    assert info.value.field == "et"
    with pytest.raises(SerializationError):
        EnvelopeCodec().loads_job(raw, **BOUND)


@pytest.mark.parametrize("et", [0, 1_700_000_000_000, MAX_TIME_MS])
def test_enqueue_times_within_the_bounds_are_read(et: int) -> None:
    assert loads(envelope({**JOB, "et": et}))["et"] == et


@pytest.mark.parametrize("t", ["-1", "2147483648", "1e300", "1.0", '"1"', "true", "[]"])
def test_try_numbers_out_of_bounds_are_refused(t: str) -> None:
    raw = raw_envelope(f'{{"t":{t},"f":"add","a":[],"k":{{}},"et":1}}')
    with pytest.raises(EnvelopeFieldError, match=r"t \(job try\) must be null or an integer") as info:
        loads(raw)
    assert info.value.field == "t"


@pytest.mark.parametrize(("field", "value"), [("a", {"x": 1}), ("a", "x"), ("k", []), ("k", "x"), ("f", ["add"])])
def test_wrongly_typed_job_fields_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(EnvelopeFieldError, match="malformed job body") as info:
        EnvelopeCodec().loads_job(envelope({**JOB, field: value}), **BOUND)
    assert info.value.field == field


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(EnvelopeFieldError) as info:
        loads(envelope({**JOB, "a": {}, "et": -5}))
    assert "a (positional arguments)" in str(info.value)
    assert "et (enqueue time in ms)" in str(info.value)


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH + 20, 1021])
def test_payloads_nested_deeper_than_orjson_writes_are_refused_on_read(levels: int) -> None:
    # orjson reads 1024 levels and writes 254: the body, its argument list and the payload count.
    raw = raw_envelope('{"t":null,"f":"add","k":{},"et":1,"a":[' + "[" * levels + "]" * levels + "]}")
    with pytest.raises(EnvelopeFieldError, match=f"deeper than {MAX_DEPTH} levels") as info:
        loads(raw)
    assert info.value.field == "d"


def test_the_deepest_payload_that_can_be_written_back_is_read() -> None:
    levels = MAX_DEPTH - 2  # the body and its argument list are the first two levels
    body = loads(raw_envelope('{"t":null,"f":"add","k":{},"et":1,"a":[' + "[" * levels + "]" * levels + "]}"))
    assert orjson.dumps(body)


@given(levels=st.integers(0, 1100), signed=st.booleans())
def test_whatever_is_read_can_be_written_back(levels: int, signed: bool) -> None:
    codec = EnvelopeCodec(b"k" * 32 if signed else None)
    text = orjson.dumps({**JOB, "a": []}).decode().replace('"a":[]', '"a":[' + "[" * levels + "]" * levels + "]")
    sig = hmac.new(b"k" * 32, text.encode(), hashlib.sha256).hexdigest()  # the body-only form
    raw = orjson.dumps({"v": 1, "d": text, "sig": sig}) if signed else raw_envelope(text)
    try:
        body = codec.loads(raw)
    except SerializationError:
        return
    assert codec.dumps({**body, "s": True, "r": None, "st": 1, "ft": 2})  # the result the worker writes back


@pytest.mark.parametrize("sig", ["é" * 64, "ab\u00e9", "0" * 63 + "\u2028", 12, None, ["a"]])
def test_non_ascii_or_non_string_signatures_are_bad_signatures(sig: object) -> None:
    codec = EnvelopeCodec(b"secret")
    raw = orjson.dumps({"v": 1, "d": orjson.dumps(JOB).decode(), "sig": sig})
    with pytest.raises(SignatureError):
        codec.loads(raw)
    with pytest.raises(SignatureError):
        codec.loads_job(raw, **BOUND)


# --- item 2: the same bounds when writing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("et", 1e300), ("et", 10**20), ("et", -1), ("et", 1.0), ("et", True), ("t", -1), ("t", MAX_TRY + 1), ("t", 1.0)],
)
def test_the_producer_refuses_job_fields_the_worker_would_refuse(field: str, value: object) -> None:
    for write in (dumps, lambda d: EnvelopeCodec(b"k").dumps_job(d, **BOUND)):
        with pytest.raises(EnvelopeFieldError, match="malformed job body") as info:
            write({**JOB, field: value})
        assert info.value.field == field
        assert isinstance(info.value, JobqError)


def test_the_producer_refuses_a_job_without_a_task_name() -> None:
    with pytest.raises(EnvelopeFieldError, match=r"f \(task name\) must be a string"):
        EnvelopeCodec().dumps_job({k: v for k, v in JOB.items() if k != "f"}, **BOUND)


def test_the_producer_refuses_payloads_nested_deeper_than_can_be_written() -> None:
    with pytest.raises(EnvelopeFieldError, match=f"nest deeper than {MAX_DEPTH} levels") as info:
        EnvelopeCodec().dumps_job({**JOB, "a": [nested(MAX_DEPTH - 1)]}, **BOUND)
    assert info.value.field.startswith("a.0.x.0.x.0...")
    assert EnvelopeCodec().dumps_job({**JOB, "a": [nested(MAX_DEPTH - 2)]}, **BOUND)  # the body and a: 2 levels


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"n": 2**64}, "a.0.n", "does not fit in 64 bits"),
        ({"n": -(2**63) - 1}, "a.0.n", "does not fit in 64 bits"),
        ({"blob": b"\x00"}, "a.0.blob", "bytes is not JSON serializable"),
        ({"m": {1: "x"}}, "a.0.m", "object keys must be strings, got int 1"),
        ({"s": "\ud800"}, "a.0.s", "not valid UTF-8"),
        ({"x": [1.0, float("nan")]}, "a.0.x.1", "NaN and infinity"),
    ],
)
def test_unencodable_values_are_named_by_their_path(payload: Any, field: str, reason: str) -> None:
    with pytest.raises(EnvelopeFieldError, match=reason) as info:
        EnvelopeCodec().dumps_job({**JOB, "a": [payload]}, **BOUND)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_a_cyclic_value_is_refused_not_walked_forever() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EnvelopeFieldError, match="nest deeper"):
        dumps({**JOB, "s": True, "r": loop, "st": 1, "ft": 2})


# --- item 3: fields by type, not truthiness ------------------------------------------------------


@pytest.mark.parametrize("version", ["true", "1.0", '"1"', "[1]", "null"])
def test_the_version_must_be_the_integer_1(version: str) -> None:
    raw = b'{"v":' + version.encode() + b',"d":' + orjson.dumps(JOB) + b"}"
    with pytest.raises(EnvelopeFieldError, match="'v' must be an integer") as info:
        loads(raw)
    assert info.value.field == "v"


def test_other_integer_versions_are_version_errors() -> None:
    with pytest.raises(EnvelopeVersionError):
        loads(envelope(JOB).replace(b'"v":1', b'"v":0'))


@pytest.mark.parametrize("body", [[], 0, True, None])
def test_the_body_must_be_an_object(body: object) -> None:
    with pytest.raises(SerializationError, match="field 'd' must hold an object"):
        loads(orjson.dumps({"v": 1, "d": body}))


@pytest.mark.parametrize(("field", "value"), [("id", 1), ("id", True), ("q", ["arq:queue"]), ("q", None)])
def test_binding_fields_must_be_strings(field: str, value: object) -> None:
    with pytest.raises(EnvelopeFieldError, match="must be a string") as info:
        loads(envelope({**JOB, field: value}))
    assert info.value.field == field


# --- end to end on fakeredis: each such job is dead-lettered on its first try, and the rest run ---------


def _signed(body_json: str, sig: str) -> bytes:
    return orjson.dumps({"v": 1, "d": body_json, "sig": sig})


HOSTILE = {
    "no task name": raw_envelope('{"t":null,"a":[],"k":{},"et":1}'),
    "et 1e300": raw_envelope('{"t":null,"f":"add","a":[{"a":1,"b":1}],"k":{},"et":1e300}'),
    "et -1e300": raw_envelope('{"t":null,"f":"add","a":[{"a":1,"b":1}],"k":{},"et":-1e300}'),
    "et 1e20": raw_envelope('{"t":null,"f":"add","a":[{"a":1,"b":1}],"k":{},"et":1e20}'),
    "et 9.3e18": raw_envelope('{"t":null,"f":"add","a":[{"a":1,"b":1}],"k":{},"et":9.3e18}'),
    "nested 300 deep": raw_envelope('{"t":null,"f":"add","k":{},"et":1,"a":[' + "[" * 300 + "]" * 300 + "]}"),
    "version true": b'{"v":true,"d":{"t":null,"f":"add","a":[{"a":1,"b":1}],"k":{},"et":1}}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_a_hostile_envelope_is_dead_lettered_on_its_first_try(harness: Harness, name: str) -> None:
    await _hostile_job_is_dead_lettered(harness, HOSTILE[name])


async def test_a_non_ascii_signature_is_dead_lettered_on_its_first_try(make_harness: Any) -> None:
    h = make_harness(signing_key="shared-secret")
    await _hostile_job_is_dead_lettered(h, _signed(orjson.dumps({**JOB, "et": 1}).decode(), "é" * 64))


async def _hostile_job_is_dead_lettered(h: Harness, raw: bytes) -> None:
    await h.redis.set("arq:job:hostile", raw)
    await h.redis.zadd("arq:queue", {"hostile": h.clock.ms()})
    good = await h.client.enqueue("add", {"a": 1, "b": 1})
    assert await h.run_due() == 2
    assert (await good.wait(timeout_s=1)).success
    store = DeadLetterStore(h.redis, "arq:queue", job_expires_s=h.settings.job_expires_s, clock_ms=h.clock.ms)
    entry = await store.show("hostile")
    assert "unable to decode job" in entry.message
    assert (entry.tries, entry.envelope_bytes()) == (1, raw)
    assert await h.redis.zcard("arq:queue") == 0
