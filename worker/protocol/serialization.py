"""The versioned JSON envelope that carries jobs and results through Redis. Never pickle.

arq serializes a plain dict for each job (``{t, f, a, k, et}``) and each result
(``{t, f, a, k, et, s, r, st, ft, q, id}``); jobq wraps that dict in an envelope::

    {"v": 1, "d": {...arq dict...}}                          unsigned
    {"v": 1, "d": "<the arq dict as JSON text>", "sig": "<hex HMAC-SHA256 of that text>"}   signed

A signed envelope carries the body as text so any language can verify the exact bytes that were
signed before parsing them. Failures are stored as ``{"type", "message", "traceback"}``; decoding a
failed result turns that dict into :class:`~worker.errors.JobFailed`, so a stock arq
``Job.result()`` raises it, and no class from the writer is ever instantiated by the reader.

A job's body also names the job id and queue it is written under (``id``, ``q``, as arq's result
dicts always have), inside the signed text: :meth:`EnvelopeCodec.dumps_job` writes them and
:meth:`EnvelopeCodec.loads_job` refuses a body read under another id or queue, so a signed job
copied by hand never runs, and a bound body cannot be turned back into an unbound one without
breaking its signature. Signed job bodies without them (older jobq, arq's ``enqueue_job``) are
accepted with one warning while ``accept_unbound`` (``JOBQ_SIGNING_ACCEPT_UNBOUND``) is on;
deprecated, the next release refuses them. Every field is checked by type and bound on both ends
(:mod:`worker.protocol.envelope_bounds`).

:class:`EnvelopeCodec` holds the optional signing key; its ``dumps``/``loads`` are the
``job_serializer``/``job_deserializer`` pair that arq's ``create_pool`` and ``Worker`` take.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import traceback
from typing import Any

import orjson
from pydantic import BaseModel

from worker.errors import EnvelopeFieldError, EnvelopeVersionError, JobFailed, SerializationError, SignatureError
from worker.protocol.envelope_bounds import (
    MAX_DEPTH,
    SHORTEST_TOO_DEEP_BYTES,
    all_finite,
    check_job_body,
    check_job_fields,
    check_job_to_write,
    nests_too_deep,
    unencodable,
)

ENVELOPE_VERSION = 1
logger = logging.getLogger("jobq.serialization")
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


class EnvelopeCodec:
    """Encodes arq's job and result dicts as jobq envelopes, optionally signed with HMAC-SHA256.

    Jobs are written and read with :meth:`dumps_job` / :meth:`loads_job`, which bind the envelope to
    the job id and queue it is stored under; :meth:`dumps` / :meth:`loads` are arq's
    ``job_serializer`` / ``job_deserializer``, which are not told the id (results carry theirs).
    """

    __slots__ = ("_accept_unbound", "_key", "_warned_unbound")

    def __init__(self, signing_key: bytes | None = None, *, accept_unbound: bool = True) -> None:
        self._key = signing_key
        self._accept_unbound = accept_unbound
        self._warned_unbound = False

    def __repr__(self) -> str:
        return f"EnvelopeCodec(signed={self._key is not None})"

    def dumps(self, data: dict[str, Any]) -> bytes:
        """Encode one arq dict as envelope bytes, not bound to a job id (results, and arq's own writers).

        Raises :class:`EnvelopeFieldError` (a ``ValueError``) naming the field when a value is not
        JSON, not finite, too deeply nested, or a job field is out of bounds.
        """
        if "f" in data:
            check_job_to_write(data)
        return self._envelope(_body(data))

    def dumps_job(self, data: dict[str, Any], *, job_id: str, queue: str) -> bytes:
        """Encode a job dict bound to the id and queue it is written under: a copy elsewhere never runs."""
        if type(job_id) is not str or type(queue) is not str:
            field = "id" if type(job_id) is not str else "q"
            raise EnvelopeFieldError(field, f"the job id and queue must be strings, got {job_id!r} and {queue!r}")
        check_job_to_write(data)
        return self._envelope(_body({**data, "id": job_id, "q": queue}))

    def loads(self, raw: bytes) -> dict[str, Any]:
        """Decode envelope bytes into arq's dict; raise :class:`SerializationError` on anything else.

        Does not check which job a signed envelope is bound to: read jobs with :meth:`loads_job`.
        """
        body = self._open(raw)
        if "f" in body:
            check_job_fields(body)
        if body.get("s") is False and _is_error_dict(body.get("r")):
            r = body["r"]
            body["r"] = JobFailed(str(r["type"]), str(r.get("message") or ""), r.get("traceback"))
        return body

    def loads_job(self, raw: bytes, *, job_id: str, queue: str) -> dict[str, Any]:
        """Decode the envelope of job ``job_id`` read from ``queue``; refuse one bound to another job or queue.

        Raises :class:`SerializationError` (:class:`SignatureError` for a signature or binding that
        does not match, :class:`EnvelopeFieldError` for a field out of bounds).
        """
        body = self._open(raw)
        check_job_body(body)
        if body.get("id") == job_id and body.get("q") == queue:
            return body
        if "id" in body or "q" in body:
            bound = f"job {_shown(body.get('id'))} on queue {_shown(body.get('q'))}"
            message = (
                f"job {job_id!r} on queue {queue!r} holds an envelope written for {bound}; a job copied "
                "under another id or queue is never run: enqueue it again instead"
            )
            raise SignatureError(message) if self._key is not None else EnvelopeFieldError("id", message)
        if self._key is not None:  # signed before signatures were bound to the job (or by arq's enqueue_job)
            self._accept_unbound_signature(job_id)
        return body

    def loads_result(self, raw: bytes, *, job_id: str) -> dict[str, Any]:
        """Decode the result envelope of job ``job_id``; refuse one written for another job.

        A result's body has always named its job (``id``, arq's result layout) inside the signed
        text, so no marker is needed: results written before binding are checked the same way.
        """
        body = self.loads(raw)
        if "id" in body and body["id"] != job_id:
            message = (
                f"the result stored for job {job_id!r} was written for job {_shown(body['id'])}; "
                "a result copied under another id is never reported"
            )
            raise SignatureError(message) if self._key is not None else EnvelopeFieldError("id", message)
        return body

    def _accept_unbound_signature(self, job_id: str) -> None:
        if not self._accept_unbound:
            raise SignatureError(
                f"job {job_id!r}: its envelope's signature is not bound to its job id and queue (written by an "
                "older jobq or by arq's enqueue_job), and JOBQ_SIGNING_ACCEPT_UNBOUND=false refuses it; "
                "enqueue it again with jobq's client"
            )
        if not self._warned_unbound:
            self._warned_unbound = True
            logger.warning(
                "job %s: accepted an envelope whose signature is not bound to its job id and queue (written by "
                "an older jobq or by arq's enqueue_job). Such envelopes can be replayed under another id; they "
                "are deprecated and the next release refuses them. Once the old jobs have run, set "
                "JOBQ_SIGNING_ACCEPT_UNBOUND=false. Logged once.",
                job_id,
            )

    def _envelope(self, body: bytes) -> bytes:
        if self._key is None:
            return b'{"v":1,"d":' + body + b"}"
        sig = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        return orjson.dumps({"v": ENVELOPE_VERSION, "d": body.decode(), "sig": sig})

    def _open(self, raw: bytes) -> dict[str, Any]:
        """The body of an envelope, its signature checked when this codec has a key."""
        try:
            envelope = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"not a jobq envelope: invalid JSON ({exc})") from None
        if type(envelope) is not dict or "v" not in envelope:
            raise SerializationError("not a jobq envelope: expected an object with a version field 'v'")
        version = envelope["v"]
        if type(version) is not int:  # by type: true == 1 in Python, and 1.0 == 1
            raise EnvelopeFieldError(
                "v", f"not a jobq envelope: the version field 'v' must be an integer, got {_shown(version)}"
            )
        if version != ENVELOPE_VERSION:
            raise EnvelopeVersionError(version, ENVELOPE_VERSION)
        body = envelope.get("d")
        if type(body) is str:
            body = self._verified_body(body, envelope.get("sig"))
        elif self._key is not None:
            raise SignatureError("envelope is not signed, but this worker requires signatures (JOBQ_SIGNING_KEY)")
        if type(body) is not dict:
            raise SerializationError("not a jobq envelope: field 'd' must hold an object")
        if len(raw) >= SHORTEST_TOO_DEEP_BYTES and nests_too_deep(raw, body):  # most jobs: one comparison
            raise EnvelopeFieldError(
                "d",
                f"the job's data nests arrays and objects deeper than {MAX_DEPTH} levels, more than can be "
                "written back; flatten it",
            )
        return body

    def _verified_body(self, text: str, sig: object) -> Any:
        if self._key is not None:
            if type(sig) is not str:
                raise SignatureError("signed envelope has no 'sig' field (a string of hex digits)")
            expected = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
            # compare_digest refuses non-ASCII text with a TypeError: such a signature is wrong anyway
            if not (sig.isascii() and hmac.compare_digest(expected, sig)):
                raise SignatureError("envelope signature does not match JOBQ_SIGNING_KEY; refusing to decode it")
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"not a jobq envelope: body is invalid JSON ({exc})") from None


def _body(data: dict[str, Any]) -> bytes:
    """The body's JSON text; refuse (naming the field) what JSON cannot hold, instead of writing null."""
    try:
        body = orjson.dumps(data, default=_default)  # first: it also stops at cycles, which all_finite would not
    except orjson.JSONEncodeError as exc:
        problem = unencodable(data, _default) or ("(value)", str(exc))
    else:
        if all_finite((data.get("a"), data.get("k"), data.get("r"))):
            return body
        problem = unencodable(data, _default) or ("(value)", "NaN and infinity cannot be stored in JSON")
    raise EnvelopeFieldError(problem[0], f"{problem[0]}: {problem[1]}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"a {type(value).__name__} ({len(text)} characters)"


def _is_error_dict(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("type"), str) and "message" in value


_UNSIGNED = EnvelopeCodec()


def dumps(data: dict[str, Any]) -> bytes:
    """Unsigned envelope encoder; pass as ``job_serializer`` to a stock arq client."""
    return _UNSIGNED.dumps(data)


def loads(raw: bytes) -> dict[str, Any]:
    """Envelope decoder without signature checks; pass as ``job_deserializer`` to a stock arq client."""
    return _UNSIGNED.loads(raw)
