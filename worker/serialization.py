"""The versioned JSON envelope that carries jobs and results through Redis. Never pickle.

arq serializes a plain dict for each job (``{t, f, a, k, et}``) and each result
(``{t, f, a, k, et, s, r, st, ft, q, id}``); jobq wraps that dict in an envelope::

    {"v": 1, "d": {...arq dict...}}                          unsigned
    {"v": 1, "d": "<the arq dict as JSON text>", "sig": "<hex HMAC-SHA256 of that text>"}   signed

A signed envelope carries the body as text so any language can verify the exact bytes that were
signed before parsing them. Failures are stored as ``{"type", "message", "traceback"}``; decoding a
failed result turns that dict into :class:`~worker.errors.JobFailed`, so a stock arq
``Job.result()`` raises it, and no class from the writer is ever instantiated by the reader.

:class:`EnvelopeCodec` holds the optional signing key; its ``dumps``/``loads`` are the
``job_serializer``/``job_deserializer`` pair that arq's ``create_pool`` and ``Worker`` take.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import traceback
from typing import Any

import orjson
from pydantic import BaseModel

from .errors import EnvelopeVersionError, JobFailed, SerializationError, SignatureError

ENVELOPE_VERSION = 1
TRACEBACK_LIMIT_CHARS = 8000


def error_to_dict(exc: BaseException) -> dict[str, str | None]:
    """The stored form of a failure: ``{type, message, traceback}``, with the cause in the message."""
    if isinstance(exc, JobFailed):
        return exc.to_dict()
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    message = str(exc)
    cause = exc.__cause__
    if cause is not None:
        message = f"{message}: {type(cause).__name__}: {cause}" if message else f"{type(cause).__name__}: {cause}"
    tb = "".join(traceback.format_exception(exc)) if exc.__traceback__ is not None else None
    if tb is not None and len(tb) > TRACEBACK_LIMIT_CHARS:
        tb = "...\n" + tb[-TRACEBACK_LIMIT_CHARS:]
    return {"type": name, "message": message, "traceback": tb}


def _default(value: Any) -> Any:
    if isinstance(value, BaseException):
        return error_to_dict(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def non_finite_path(value: Any) -> str | None:
    """The dotted path of the first NaN or infinity inside ``value``, or ``None`` if there is none.

    JSON has neither, and orjson would silently write them as null, so they are refused instead.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return path or "(value)"
        elif isinstance(item, dict):
            stack.extend((f"{path}.{key}" if path else str(key), v) for key, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(item))
    return None


def all_finite(value: Any) -> bool:
    """Whether ``value`` holds no NaN or infinity: :func:`non_finite_path` without building any path."""
    # The hot path of every encode: paths are built (by non_finite_path) only once this says no.
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        t = type(item)  # exact types first: identity tests cost less than isinstance
        if t is str or t is int or item is None or t is bool:
            continue
        if t is dict:
            extend(item.values())
        elif t is list or t is tuple:
            extend(item)
        elif isinstance(item, float):
            if item - item != 0.0:  # NaN - NaN and inf - inf are NaN; any finite x - x is 0.0
                return False
        elif isinstance(item, dict):
            extend(item.values())
        elif isinstance(item, list | tuple):
            extend(item)
    return True


def _check_finite(value: Any) -> None:
    if all_finite(value):
        return
    path = non_finite_path(value)
    raise ValueError(f"{path}: NaN and infinity cannot be stored in JSON; use a finite number or null")


_NO_ARGS: list[Any] = []  # defaults for absent fields: only their types are looked at
_NO_KWARGS: dict[str, Any] = {}


def _check_job_fields(d: dict[str, Any]) -> None:
    """Refuse bodies whose arq fields have the wrong types, before arq trips over them."""
    if "f" not in d:
        return
    t, et = d.get("t"), d.get("et")
    # The common case first: exact types, tested by identity (a bool is never one of them).
    if (
        type(d["f"]) is str
        and type(d.get("a", _NO_ARGS)) is list
        and type(d.get("k", _NO_KWARGS)) is dict
        and (t is None or type(t) is int)
        and (type(et) is int or type(et) is float)
    ):
        return
    problems = []
    if not isinstance(d["f"], str):
        problems.append("f (task name) must be a string")
    if not isinstance(d.get("a", []), list):
        problems.append("a (positional arguments) must be a list")
    if not isinstance(d.get("k", {}), dict):
        problems.append("k (keyword arguments) must be an object")
    if not isinstance(d.get("t"), int | None) or isinstance(d.get("t"), bool):
        problems.append("t (job try) must be an integer or null")
    if not isinstance(d.get("et"), int | float) or isinstance(d.get("et"), bool):
        problems.append("et (enqueue time in ms) must be a number")
    if problems:
        raise SerializationError("malformed job body: " + "; ".join(problems))


class EnvelopeCodec:
    """Encodes arq's job and result dicts as jobq envelopes, optionally signed with HMAC-SHA256."""

    __slots__ = ("_key",)

    def __init__(self, signing_key: bytes | None = None) -> None:
        self._key = signing_key

    def __repr__(self) -> str:
        return f"EnvelopeCodec(signed={self._key is not None})"

    @property
    def signed(self) -> bool:
        """Whether this codec signs what it writes and refuses unsigned envelopes."""
        return self._key is not None

    def dumps(self, data: dict[str, Any]) -> bytes:
        """Encode one arq dict as envelope bytes; non-finite floats raise ``ValueError``."""
        if not all_finite((data.get("a"), data.get("k"), data.get("r"))):
            for field in ("a", "k", "r"):  # name the first bad field
                _check_finite(data.get(field))
        body = orjson.dumps(data, default=_default)
        if self._key is None:
            return b'{"v":1,"d":' + body + b"}"
        sig = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        return orjson.dumps({"v": ENVELOPE_VERSION, "d": body.decode(), "sig": sig})

    def loads(self, raw: bytes) -> dict[str, Any]:
        """Decode envelope bytes into arq's dict; raise :class:`SerializationError` on anything else."""
        try:
            envelope = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"not a jobq envelope: invalid JSON ({exc})") from None
        if not isinstance(envelope, dict) or "v" not in envelope:
            raise SerializationError("not a jobq envelope: expected an object with a version field 'v'")
        if envelope["v"] != ENVELOPE_VERSION:
            raise EnvelopeVersionError(envelope["v"], ENVELOPE_VERSION)
        body = envelope.get("d")
        if isinstance(body, str):
            body = self._verified_body(body, envelope.get("sig"))
        elif self._key is not None:
            raise SignatureError("envelope is not signed, but this worker requires signatures (JOBQ_SIGNING_KEY)")
        if not isinstance(body, dict):
            raise SerializationError("not a jobq envelope: field 'd' must hold an object")
        _check_job_fields(body)
        if body.get("s") is False and _is_error_dict(body.get("r")):
            r = body["r"]
            body["r"] = JobFailed(str(r["type"]), str(r.get("message") or ""), r.get("traceback"))
        return body

    def _verified_body(self, text: str, sig: object) -> Any:
        if self._key is not None:
            if not isinstance(sig, str):
                raise SignatureError("signed envelope has no 'sig' field")
            expected = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, sig):
                raise SignatureError("envelope signature does not match JOBQ_SIGNING_KEY; refusing to decode it")
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"not a jobq envelope: body is invalid JSON ({exc})") from None


def _is_error_dict(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("type"), str) and "message" in value


_UNSIGNED = EnvelopeCodec()


def dumps(data: dict[str, Any]) -> bytes:
    """Unsigned envelope encoder; pass as ``job_serializer`` to a stock arq client."""
    return _UNSIGNED.dumps(data)


def loads(raw: bytes) -> dict[str, Any]:
    """Envelope decoder without signature checks; pass as ``job_deserializer`` to a stock arq client."""
    return _UNSIGNED.loads(raw)
