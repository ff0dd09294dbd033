"""The JSON envelope: round trips, versions, signatures, failures as data, hostile bytes."""

from __future__ import annotations

import pickle
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from worker.errors import EnvelopeFieldError, EnvelopeVersionError, JobFailed, SerializationError, SignatureError
from worker.protocol.serialization import EnvelopeCodec, dumps, error_to_dict, loads

JOB: dict[str, Any] = {"t": None, "f": "add", "a": [{"a": 1, "b": 2}], "k": {}, "et": 1_700_000_000_000}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def test_job_round_trip_is_exact() -> None:
    assert loads(dumps(JOB)) == JOB


def test_envelope_is_versioned_json() -> None:
    raw = dumps(JOB)
    envelope = orjson.loads(raw)
    assert envelope == {"v": 1, "d": JOB}


@given(payload=json_values)
def test_any_json_payload_round_trips(payload: Any) -> None:
    job = {**JOB, "a": [payload]}
    assert loads(dumps(job)) == job


@given(payload=json_values)
def test_signed_round_trip(payload: Any) -> None:
    codec = EnvelopeCodec(b"k" * 32)
    job = {**JOB, "a": [payload]}
    assert codec.loads(codec.dumps(job)) == job


def test_newer_version_is_refused_with_both_versions_named() -> None:
    raw = orjson.dumps({"v": 2, "d": JOB})
    with pytest.raises(EnvelopeVersionError) as info:
        loads(raw)
    assert info.value.found == 2
    assert "version 2" in str(info.value)
    assert "version 1" in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x04\x95garbage",
        b"\xff\xfe\x00not utf8",
        b"",
        b"[1, 2, 3]",
        b'{"d": {}}',
        b'{"v": 1, "d": [1]}',
        pickle.dumps(JOB),
    ],
)
def test_garbage_is_a_serialization_error(raw: bytes) -> None:
    with pytest.raises(SerializationError):
        loads(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("f", 42),
        ("f", ["list"]),
        ("a", {"not": "list"}),
        ("k", [1]),
        ("t", "1"),
        ("et", "yesterday"),
        ("t", True),
        ("et", True),
        ("et", None),
        ("t", 1.0),
    ],
)
def test_malformed_job_fields_are_refused_before_arq_sees_them(field: str, value: Any) -> None:
    with pytest.raises(SerializationError, match="malformed job body"):
        loads(orjson.dumps({"v": 1, "d": {**JOB, field: value}}))


@pytest.mark.parametrize("missing", ["a", "k", "t"])
def test_job_fields_that_arq_may_leave_out_are_accepted(missing: str) -> None:
    body = {k: v for k, v in JOB.items() if k != missing}
    assert loads(orjson.dumps({"v": 1, "d": body})) == body


def test_pickle_is_never_executed(tmp_path: Any) -> None:
    canary = tmp_path / "pwned"

    class Gadget:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(canary), "w"))

    with pytest.raises(SerializationError):
        loads(pickle.dumps(Gadget()))
    assert not canary.exists()


def test_signing_detects_any_tampering() -> None:
    codec = EnvelopeCodec(b"secret")
    envelope = orjson.loads(codec.dumps(JOB))
    envelope["d"] = envelope["d"].replace('"add"', '"rm_rf"')
    with pytest.raises(SignatureError, match="does not match"):
        codec.loads(orjson.dumps(envelope))


def test_wrong_key_is_refused() -> None:
    raw = EnvelopeCodec(b"producer-key").dumps(JOB)
    with pytest.raises(SignatureError):
        EnvelopeCodec(b"other-key").loads(raw)


def test_unsigned_envelope_is_refused_when_signatures_are_required() -> None:
    with pytest.raises(SignatureError, match="requires signatures"):
        EnvelopeCodec(b"secret").loads(dumps(JOB))


def test_signed_envelope_without_sig_field_is_refused() -> None:
    raw = orjson.dumps({"v": 1, "d": orjson.dumps(JOB).decode()})
    with pytest.raises(SignatureError, match="no 'sig'"):
        EnvelopeCodec(b"secret").loads(raw)


def test_codec_repr_hides_the_key() -> None:
    assert "secret" not in repr(EnvelopeCodec(b"secret"))


def test_failed_result_becomes_job_failed_with_type_message_traceback() -> None:
    try:
        raise ValueError("bad things")
    except ValueError as exc:
        result = {**JOB, "s": False, "r": exc, "st": 1, "ft": 2, "q": "arq:queue", "id": "x"}
        raw = dumps(result)
    stored = orjson.loads(raw)["d"]["r"]
    assert stored["type"] == "ValueError"
    assert stored["message"] == "bad things"
    assert "Traceback" in stored["traceback"]
    decoded = loads(raw)["r"]
    assert isinstance(decoded, JobFailed)
    assert (decoded.error_type, decoded.message) == ("ValueError", "bad things")


def test_successful_result_dict_is_not_mistaken_for_an_error() -> None:
    value = {"type": "x", "message": "a result that looks like an error"}
    result = {**JOB, "s": True, "r": value, "st": 1, "ft": 2}
    assert loads(dumps(result))["r"] == value


def test_error_cause_is_kept_in_the_message() -> None:
    try:
        try:
            raise KeyError("f")
        except KeyError as inner:
            raise RuntimeError("unable to deserialize job") from inner
    except RuntimeError as exc:
        stored = error_to_dict(exc)
    assert stored["message"] == "unable to deserialize job: KeyError: 'f'"


def test_non_builtin_errors_are_named_with_their_module() -> None:
    class Custom(Exception):
        pass

    assert error_to_dict(Custom("x"))["type"] == f"{__name__}.{Custom.__qualname__}"


def test_models_and_sets_are_encoded_as_json() -> None:
    class Out(BaseModel):
        n: int

    result = {**JOB, "s": True, "r": {"model": Out(n=3), "tags": {"b", "a"}}, "st": 1, "ft": 2}
    assert loads(dumps(result))["r"] == {"model": {"n": 3}, "tags": ["a", "b"]}


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers_are_refused_not_silently_nulled(bad: float) -> None:
    with pytest.raises(EnvelopeFieldError, match=r"^a\.0\.nested\.1: NaN and infinity cannot be stored in JSON"):
        dumps({**JOB, "a": [{"nested": [1.0, bad]}]})


def test_unencodable_value_is_refused_naming_it() -> None:
    with pytest.raises(EnvelopeFieldError, match=r"^r\.x: object is not JSON serializable") as info:
        dumps({**JOB, "s": True, "r": {"x": object()}})
    assert info.value.field == "r.x"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("a", [{"x": 1, "y": {"z": (2.0, float("nan"))}}], r"a\.0\.y\.z\.1"),
        ("k", {"opts": [float("inf")]}, r"k\.opts\.0"),
        ("r", float("-inf"), r"r"),
    ],
)
def test_non_finite_numbers_are_named_in_every_checked_field(field: str, value: object, path: str) -> None:
    with pytest.raises(ValueError, match=rf"^{path}: NaN and infinity"):
        dumps({**JOB, "s": True, field: value})


class _Float(float):
    pass


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        float("nan"),
        float("inf"),
        {"a": [1, "x", None, True, (2.5, {"b": float("-inf")})]},
        {"a": [1, "x", None, True, (2.5, {"b": 1e308})]},
        [_Float("nan")],
        [_Float(3.0)],
        "nan",
    ],
)
def test_all_finite_agrees_with_non_finite_path(value: object) -> None:
    from worker.protocol.envelope_bounds import all_finite, non_finite_path

    assert all_finite(value) is (non_finite_path(value) is None)
