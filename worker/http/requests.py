"""What the HTTP API reads from a request: the JSON body (bounded in time and depth), the query parameters
(each checked against the bound the OpenAPI document states) and the queue it works on."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

from worker.client.dead_letters import DeadLetterFilter
from worker.client.producer import Client
from worker.observability.metrics import Metrics
from worker.protocol.keys import queue_name_problem
from worker.timeparse import parse_when_ms

CLIENT = web.AppKey("client", Client)
METRICS = web.AppKey("metrics", Metrics)
#: The request's key under which a handler notes the queue it works on, so a WRONGTYPE can name it.
QUEUE_USED = web.RequestKey("queue", str)
#: How deep objects and arrays may nest in a request body (the body itself is level 1). Far below the
#: 254 levels a job envelope can hold, and it keeps a hostile body from costing deep recursion.
MAX_BODY_DEPTH = 100
#: Bounds of the query parameters: (lowest, highest).
WAIT_BOUNDS_S = (0.0, 60.0)
RUNNING_LIMIT = (1, 500)
DEAD_LETTER_LIMIT = (1, 1000)
WORKFLOW_LIMIT = (1, 1000)
#: Numbers in a query as JSON writes them (ASCII digits only: Python's float() and int() take more).
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")


class RequestRefused(ValueError):
    """A request the API refuses before doing anything; answered with ``status`` and the named fields."""

    def __init__(self, status: int, message: str, fields: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.fields = list(fields)


def too_deep(value: Any, limit: int = MAX_BODY_DEPTH) -> str | None:
    """The dotted path at which ``value`` nests deeper than ``limit`` levels, or ``None``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # a first pass without paths: the common case builds none
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return _deep_path(value, limit)
        stack.extend((child, depth + 1) for child in children)
    return None


def _deep_path(value: Any, limit: int) -> str:
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return ".".join(path)
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, depth + 1, (*path, str(key))) for key, child in pairs)
    return ""


async def read_body(request: web.Request, model: type[BaseModel]) -> Any:
    """The body validated as ``model``: 408 when it does not arrive in time, 400 when it is not JSON,
    422 when it nests too deep or does not validate (413 past the size limit, from aiohttp)."""
    timeout_s = request.app[CLIENT].settings.api_read_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            raw = await request.read()
    except TimeoutError:
        raise RequestRefused(408, f"the request body did not arrive within {timeout_s:g}s") from None
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(400, f"the body is not JSON: {exc}") from None
    path = too_deep(data)
    if path is not None:
        field = ".".join(path.split(".")[:2]) if path.startswith("payload.") else path.split(".")[0]
        message = f"nested deeper than {MAX_BODY_DEPTH} levels"
        raise RequestRefused(422, f"{field}: {message}", [(field, message)])
    return model.model_validate(data)


def queue_of(request: web.Request, given: str | None = None) -> str:
    """The queue a request works on (``given``, else ``?queue=``, else the default), noted on the request."""
    if given is None:
        given = request.query.get("queue")
    queue = request.app[CLIENT].settings.queue_name if given is None else given
    problem = queue_name_problem(queue)
    if problem is not None:
        raise RequestRefused(422, f"queue {problem}", [("queue", problem)])
    request[QUEUE_USED] = queue
    return queue


def seconds(request: web.Request, name: str, default: float, bounds: tuple[float, float] = WAIT_BOUNDS_S) -> float:
    """A query parameter that is a number of seconds within ``bounds``; 422 naming it otherwise."""
    low, high = bounds
    text = request.query.get(name)
    value = default if text is None else float(text) if NUMBER.fullmatch(text) else math.nan
    if not low <= value <= high:  # also refuses NaN
        message = f"must be a number of seconds from {low:g} to {high:g}"
        raise RequestRefused(422, f"{name} {message}, got {text!r}", [(name, message)])
    return value


def count(request: web.Request, name: str, default: int, bounds: tuple[int, int]) -> int:
    """A query parameter that is a whole number within ``bounds``; 422 naming it otherwise."""
    low, high = bounds
    text = request.query.get(name)
    value = default if text is None else int(text) if INTEGER.fullmatch(text) else None
    if value is None or not low <= value <= high:
        message = f"must be a whole number from {low} to {high}"
        raise RequestRefused(422, f"{name} {message}, got {text!r}", [(name, message)])
    return value


def dead_letter_filter(request: web.Request) -> DeadLetterFilter:
    """``task``, ``error_type``, ``since`` and ``until`` from the query; 422 naming a bad time."""
    q = request.query
    when: dict[str, int | None] = {}
    for name in ("since", "until"):
        try:
            when[name] = parse_when_ms(q[name]) if name in q else None
        except ValueError as exc:
            raise RequestRefused(422, f"{name}: {exc}", [(name, str(exc))]) from None
    return DeadLetterFilter(q.get("task"), q.get("error_type"), when["since"], when["until"])
