"""What an envelope's body may hold: the job fields' types and ranges, and how deep it may nest.

The producer and the worker apply the same bounds, so a job the producer accepts is one a worker
can run and write back, and a body that decodes but breaks the worker is refused when read (the
job is dead-lettered on its first try instead of looping):

- ``f`` (task name) a string; ``a`` a list; ``k`` an object; ``id`` and ``q`` (the job id and queue
  the envelope is bound to) strings.
- ``et`` (enqueue time, ms) an integer from 0 to :data:`MAX_TIME_MS`, the last millisecond a
  ``datetime`` holds (9999-12-31): never a float or a bool, well inside the 64-bit integers Redis
  and orjson write.
- ``t`` (the try a producer asks for) null or an integer from 0 to :data:`MAX_TRY`.
- Arrays and objects nest at most :data:`MAX_DEPTH` levels, counted from the body: orjson reads
  1024 levels but writes only 254, and the worker writes the arguments back in the job's result.
- No NaN or infinity (JSON has neither; orjson would write null), no integer beyond 64 bits, no
  bytes, no key that is not a string: refused when written, naming the dotted path.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from worker.errors import EnvelopeFieldError

__all__ = [
    "MAX_DEPTH",
    "MAX_TIME_MS",
    "MAX_TRY",
    "SHORTEST_TOO_DEEP_BYTES",
    "all_finite",
    "check_job_body",
    "check_job_fields",
    "check_job_to_write",
    "nests_too_deep",
    "non_finite_path",
    "unencodable",
]

MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_TRY = 2**31 - 1
MAX_DEPTH = 254  # orjson's write limit; the body object itself is level 1
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1  # what orjson writes
#: No envelope shorter than this nests too deep: it takes MAX_DEPTH + 1 opening and closing brackets.
SHORTEST_TOO_DEEP_BYTES = 2 * (MAX_DEPTH + 1)


_NO_ARGS: list[Any] = []  # defaults for fields arq may leave out: only their types are looked at
_NO_KWARGS: dict[str, Any] = {}
_RULES = (
    ("f", "task name", "must be a string"),
    ("a", "positional arguments", "must be a list"),
    ("k", "keyword arguments", "must be an object"),
    ("t", "job try", f"must be null or an integer from 0 to {MAX_TRY}"),
    ("et", "enqueue time in ms", f"must be an integer from 0 to {MAX_TIME_MS}"),
    ("id", "job id the envelope is bound to", "must be a string"),
    ("q", "queue the envelope is bound to", "must be a string"),
)


def check_job_body(d: dict[str, Any]) -> None:
    """Refuse a job body the worker could not run: every field it reads present, by type and bound.

    The binding (``id``, ``q``) is compared by the caller: equal to the job id, it is a string.
    """
    t, et = d.get("t"), d.get("et")
    # The hot path of every try: exact types, tested by identity (a bool is never one of them).
    if (
        type(d.get("f")) is str
        and type(d.get("a")) is list
        and type(d.get("k")) is dict
        and (t is None or (type(t) is int and 0 <= t <= MAX_TRY))
        and type(et) is int
        and 0 <= et <= MAX_TIME_MS
    ):
        return
    _refuse(d, writing=False, complete=True)


def check_job_fields(d: dict[str, Any]) -> None:
    """Refuse a job or result body read by arq's deserializer: as :func:`check_job_body`, but ``a`` and
    ``k`` may be left out (arq's other dicts), and ``id`` and ``q`` must be strings when present."""
    t, et = d.get("t"), d.get("et")
    if (
        type(d.get("f")) is str
        and type(d.get("a", _NO_ARGS)) is list
        and type(d.get("k", _NO_KWARGS)) is dict
        and (t is None or (type(t) is int and 0 <= t <= MAX_TRY))
        and type(et) is int
        and 0 <= et <= MAX_TIME_MS
        and type(d.get("id", "")) is str
        and type(d.get("q", "")) is str
    ):
        return
    _refuse(d, writing=False, complete=False)


def check_job_to_write(d: dict[str, Any]) -> None:
    """Refuse to write a job or result body a worker would refuse (``a`` may be a tuple, as arq passes it)."""
    t, et, a = d.get("t"), d.get("et"), d.get("a")
    if (
        type(d.get("f")) is str
        and (type(a) is list or type(a) is tuple)
        and type(d.get("k")) is dict
        and (t is None or (type(t) is int and 0 <= t <= MAX_TRY))
        and type(et) is int
        and 0 <= et <= MAX_TIME_MS
    ):
        return
    _refuse(d, writing=True, complete=True)


def _refuse(d: dict[str, Any], *, writing: bool, complete: bool) -> None:
    problems = [
        f"{field} ({what}) {rule}, got {_shown(d.get(field))}"
        for field, what, rule in _RULES
        if not _field_ok(field, d, writing=writing, complete=complete)
    ]
    if problems:
        raise EnvelopeFieldError(problems[0].split(" ", 1)[0], "malformed job body: " + "; ".join(problems))


def _field_ok(field: str, d: dict[str, Any], *, writing: bool, complete: bool) -> bool:
    if field not in d:
        return field in ("t", "id", "q") or (field in ("a", "k") and not complete)
    value = d[field]
    if field == "a":
        return isinstance(value, list | tuple) if writing else isinstance(value, list)
    if field == "k":
        return isinstance(value, dict)
    if field == "t":
        return value is None or (type(value) is int and 0 <= value <= MAX_TRY)
    if field == "et":
        return type(value) is int and 0 <= value <= MAX_TIME_MS
    return isinstance(value, str)  # f, id, q


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


def nests_too_deep(raw: bytes, body: object) -> bool:
    """Whether ``body``, decoded from ``raw``, nests deeper than :data:`MAX_DEPTH` (orjson could not write it).

    Costs a length test for almost every job: a body cannot nest that deep in fewer bytes, or with
    fewer brackets. Only the rest are checked exactly, by writing them.
    """
    if len(raw) < SHORTEST_TOO_DEEP_BYTES or raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:  # a decoded body holds only JSON types: depth is all that can fail
        return True
    return False


def unencodable(value: Any, convert: Callable[[Any], Any]) -> tuple[str, str] | None:
    """The dotted path and reason of the first thing in ``value`` that orjson cannot write, if any.

    ``convert`` is the ``default`` hook given to orjson. Only called once a write failed (or a
    number is not finite), so it may be slow.
    """
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        problem = _problem(item, depth)
        if problem is not None:
            return _short(path), problem
        children: list[tuple[str, Any, int]] = []
        if isinstance(item, dict):
            children = [(f"{path}.{k}" if path else str(k), v, depth + 1) for k, v in item.items()]
        elif isinstance(item, list | tuple):
            children = [(f"{path}.{i}" if path else str(i), v, depth + 1) for i, v in enumerate(item)]
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            children = [(f"{path}.{f.name}", getattr(item, f.name), depth + 1) for f in dataclasses.fields(item)]
        elif not isinstance(item, _NATIVE):
            try:
                children = [(path, convert(item), depth)]
            except TypeError as exc:
                return _short(path), str(exc)
        stack.extend(reversed(children))
    return None


_NATIVE = (str, int, float, type(None), datetime.date, datetime.time, uuid.UUID, enum.Enum)


def _problem(item: Any, depth: int) -> str | None:
    if isinstance(item, bool) or item is None:
        return None
    if isinstance(item, str):
        try:
            item.encode()
        except UnicodeEncodeError:
            return "the string is not valid UTF-8 (it holds a lone surrogate)"
    elif isinstance(item, int):
        if not _INT_MIN <= item <= _UINT_MAX:
            return "the integer does not fit in 64 bits; send it as a string"
    elif isinstance(item, float):
        if not math.isfinite(item):
            return "NaN and infinity cannot be stored in JSON; use a finite number or null"
    elif isinstance(item, dict | list | tuple):
        return _container_problem(item, depth)
    return None


def _container_problem(item: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> str | None:
    if depth >= MAX_DEPTH:
        return f"arrays and objects nest deeper than {MAX_DEPTH} levels; flatten the data"
    if isinstance(item, dict):
        bad_keys = [k for k in item if not isinstance(k, str)]
        if bad_keys:
            return f"object keys must be strings, got {type(bad_keys[0]).__name__} {_shown(bad_keys[0])}"
    return None


def _short(path: str) -> str:
    parts = path.split(".")
    return path if len(parts) <= 8 else ".".join(parts[:6]) + f"...({len(parts)} levels)"


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
