"""What the producer checks before it writes anything: the task, job id, schedule, timeout and payload.

Every refusal is a :class:`~worker.errors.JobqError` naming the field (and the batch item), raised
before the first byte reaches Redis. The bounds keep what is written inside what Redis, Lua and
the readers accept: a score and a key TTL Redis takes as integers, datetimes Python can build back,
JSON that every reader decodes the same (no NaN, no integer beyond 64 bits, text that is UTF-8).
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from worker.errors import InvalidJobOptions, InvalidPayload
from worker.protocol.fairness import MAX_FAIR_KEY_LEN
from worker.protocol.priority import MAX_PRIORITY
from worker.taskdef.registry import TaskDef

MAX_JOB_ID_LEN = 256
#: The latest time a job may be scheduled at (ms): the end of year 9999, the last one a datetime holds.
MAX_SCORE_MS = round(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() * 1000)
#: The longest job key lifetime (ms) written: beyond 2**53 Lua numbers and Redis scores lose precision.
MAX_TTL_MS = 2**53
#: The longest per-job timeout a producer may ask for, in seconds (365 days).
MAX_TIMEOUT_S = 365 * 86400.0
#: Integers JSON readers (orjson, and so the worker) take: signed or unsigned 64 bits.
INT_RANGE = (-(2**63), 2**64 - 1)
#: How deep a payload may nest: the worker writes it again, inside a result or a dead letter.
MAX_DEPTH = 200


def where(item: int | None) -> str:
    """`` (batch item N)`` for a job of a batch, else nothing."""
    return f" (batch item {item})" if item is not None else ""


def random_job_id() -> str:
    """128 random bits as 32 hex digits, like arq's ``uuid4().hex`` (and a quarter of its cost)."""
    return os.urandom(16).hex()


def check_job_id(job_id: object, at: str) -> str:
    """``job_id`` if it is a usable job id (1 to 256 printable characters, no spaces)."""
    if not isinstance(job_id, str) or not job_id or len(job_id) > MAX_JOB_ID_LEN:
        raise InvalidJobOptions(f"job_id must be a string of 1 to {MAX_JOB_ID_LEN} characters{at}", field="job_id")
    if not job_id.isprintable() or any(ch.isspace() for ch in job_id):
        raise InvalidJobOptions(
            f"job_id must not contain spaces or control characters{at}, got {job_id!r}", field="job_id"
        )
    return job_id


def score_ms(defer_by: object, defer_until: object, now_ms: int, at: str) -> int:
    """When the job may run (ms since the epoch, its score in the queue), from ``defer_by`` or ``defer_until``."""
    if defer_by is not None and defer_until is not None:
        raise InvalidJobOptions(f"give defer_by or defer_until, not both{at}", field="defer_by")
    if defer_until is not None:
        if not isinstance(defer_until, datetime) or defer_until.utcoffset() is None:
            raise InvalidJobOptions(
                f"defer_until must be a timezone-aware datetime{at}, e.g. datetime.now(UTC) + timedelta(...)",
                field="defer_until",
            )
        try:
            score = round(defer_until.timestamp() * 1000)
        except (OverflowError, ValueError):
            score = MAX_SCORE_MS + 1
        if score > MAX_SCORE_MS:
            raise InvalidJobOptions(f"defer_until must be before the year 10000{at}", field="defer_until")
        return score
    if defer_by is None:
        return now_ms
    seconds = defer_by.total_seconds() if isinstance(defer_by, timedelta) else defer_by
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or (isinstance(seconds, float) and not math.isfinite(seconds))
        or seconds < 0
    ):
        raise InvalidJobOptions(
            f"defer_by must be a non-negative number of seconds or a timedelta{at}, got {defer_by!r:.40}",
            field="defer_by",
        )
    if seconds > (MAX_SCORE_MS - now_ms) / 1000:
        raise InvalidJobOptions(
            f"defer_by must be at most {(MAX_SCORE_MS - now_ms) // 1000} seconds (before the year 10000){at}",
            field="defer_by",
        )
    return now_ms + round(seconds * 1000)


def check_ttl_ms(ttl_ms: int, at: str) -> int:
    """The job key's lifetime, refused when it is beyond what Redis takes (a huge JOBQ_JOB_EXPIRES_S)."""
    if ttl_ms > MAX_TTL_MS:
        raise InvalidJobOptions(
            f"the job would be kept {ttl_ms // 1000} seconds{at}, more than Redis accepts; "
            "lower JOBQ_JOB_EXPIRES_S or the job's defer",
            field="defer_by",
        )
    return ttl_ms


def check_timeout(task_def: TaskDef[Any, Any], timeout: object, at: str) -> float:
    """A per-job timeout as seconds: a positive number of at most :data:`MAX_TIMEOUT_S`."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_S  # also refuses NaN
    ):
        raise InvalidJobOptions(
            f"timeout_s must be a positive number of seconds for task {task_def.name!r} "
            f"(at most {MAX_TIMEOUT_S:.0f}){at}, got {timeout!r:.40}",
            field="timeout_s",
        )
    return float(timeout)


def check_priority(task_def: TaskDef[Any, Any], priority: object, at: str) -> int:
    """A job's priority: an integer from 0 (the default) to :data:`~worker.protocol.priority.MAX_PRIORITY`."""
    if type(priority) is not int or not 0 <= priority <= MAX_PRIORITY:
        raise InvalidJobOptions(
            f"priority must be an integer from 0 (the default) to {MAX_PRIORITY} for task {task_def.name!r}"
            f" (higher runs first){at}, got {priority!r:.40}",
            field="priority",
        )
    return priority


def fair_key(task_def: TaskDef[Any, Any], model: BaseModel, priority: int, at: str) -> str:
    """The fairness key of a job of a task with ``fair_by``: the text of that payload field."""
    if priority:
        raise InvalidJobOptions(
            f"task {task_def.name!r} serves its jobs fairly (fair_by={task_def.fair_by!r}): they take no priority{at}",
            field="priority",
        )
    value = getattr(model, task_def.fair_by or "")
    key = value if isinstance(value, str) else str(value)
    if not 1 <= len(key) <= MAX_FAIR_KEY_LEN:
        raise InvalidJobOptions(
            f"the fair_by field {task_def.fair_by!r} of task {task_def.name!r} must give a key of 1 to "
            f"{MAX_FAIR_KEY_LEN} characters{at}, got {len(key)}",
            field="fair_by",
        )
    return key


def task_name(task: object) -> str:
    """``task`` as the name to look up in the registry."""
    if not isinstance(task, str):
        raise InvalidJobOptions(
            f"task must be a TaskDef or a registered task name, got {type(task).__name__} {task!r:.40}", field="task"
        )
    return task


_UNTYPED: dict[type[BaseModel], bool] = {}


def may_hold_untyped(model: type[BaseModel]) -> bool:
    """Whether a payload model has fields of no declared type (``Any``, a bare ``dict``, extra fields).

    pydantic's JSON dump writes NaN and infinity found in such fields as null, so their values are
    looked at before the dump (typed floats keep them, and the codec refuses them after the dump).
    """
    known = _UNTYPED.get(model)
    if known is None:
        known = _UNTYPED[model] = _schema_is_untyped(model.__pydantic_core_schema__)
    return known


def _schema_is_untyped(schema: Any) -> bool:
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") in ("any", "function-plain", "function-wrap"):
                return True
            if item.get("extra_fields_behavior") == "allow":
                return True
            stack.extend(v for k, v in item.items() if k not in ("cls", "metadata", "default"))
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def bad_value(value: Any) -> tuple[str, str] | None:
    """``(dotted path, problem)`` of the first value inside ``value`` that JSON cannot carry faithfully.

    That is NaN or infinity, an integer beyond 64 bits, bytes that are not UTF-8, or nesting deeper
    than :data:`MAX_DEPTH`; models are looked into field by field.
    """
    stack: list[tuple[str, int, Any]] = [("", 0, value)]
    while stack:
        path, depth, item = stack.pop()
        problem = f"nested deeper than {MAX_DEPTH} levels" if depth > MAX_DEPTH else _leaf_problem(item)
        if problem is not None:
            return path or "(payload)", problem
        children = _children(item)
        if children:
            stack.extend((_join(path, k), depth + 1, v) for k, v in reversed(children))
    return None


def _leaf_problem(item: Any) -> str | None:
    if isinstance(item, float):
        return None if math.isfinite(item) else "NaN and infinity cannot be sent as JSON"
    if isinstance(item, int) and not isinstance(item, bool):
        return None if INT_RANGE[0] <= item <= INT_RANGE[1] else "integers must fit in 64 bits"
    if isinstance(item, bytes | bytearray):
        try:
            bytes(item).decode()
        except UnicodeDecodeError:
            return "bytes must be UTF-8 text; send binary data base64-encoded"
    return None


def _children(item: Any) -> list[tuple[object, Any]]:
    if isinstance(item, BaseModel):
        fields = dict(item.__dict__)
        fields.update(item.__pydantic_extra__ or {})
        return list(fields.items())
    if isinstance(item, dict):
        return list(item.items())
    if isinstance(item, list | tuple | set | frozenset):
        return list(enumerate(item))
    return []


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def json_payload(task_def: TaskDef[Any, Any], model: BaseModel, item: int | None) -> Any:
    """The validated payload as JSON-ready data, or :class:`InvalidPayload` naming what cannot be sent."""
    try:
        payload = model.model_dump(mode="json")
    except (ValueError, TypeError) as exc:  # bytes that are not UTF-8, values pydantic cannot write as JSON
        raise unencodable(task_def, model, exc, item) from None
    if may_hold_untyped(type(model)):  # where pydantic's dump would have written NaN as null
        problem = bad_value(model)
        if problem is not None:
            raise InvalidPayload(task_def.name, [problem], item=item)
    return payload


def unencodable(task_def: TaskDef[Any, Any], payload: Any, exc: Exception, item: int | None) -> InvalidPayload:
    """The error for a payload the envelope codec refused (``exc``), naming the field when it can be found."""
    problem = bad_value(payload) or ("(payload)", f"cannot be sent as JSON: {exc}")
    return InvalidPayload(task_def.name, [problem], item=item)
