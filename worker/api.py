"""The HTTP API (``jobq api``): enqueue from any language, inspect and abort jobs, queue stats, dead
letters, the dashboard, and an OpenAPI document at ``/openapi.json``.

Every ``/v1`` route needs ``Authorization: Bearer <JOBQ_API_TOKEN>``; ``/dashboard``, ``/openapi.json``,
``/livez`` and ``/metrics`` are open. Errors are JSON ``{"error": ..., "fields": [{"field", "message"}]}``:
401 without a valid token, 400 for a body that is not JSON, 422 for an invalid body (nothing is
written), 404 for an unknown job or dead letter, 409 for a replay whose job id is taken, 503 when Redis
is unreachable.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from .api_models import (
    AbortOut,
    CountOut,
    DeadLetterOut,
    DeadLetterSelection,
    EnqueueBody,
    EnqueuedOut,
    ErrorOut,
    JobOut,
    ResultOut,
    RunningOut,
    StatsOut,
    TaskOut,
)
from .client import Client
from .dead_letters import DeadLetterFilter, DeadLetterStore
from .errors import InvalidJobOptions, InvalidPayload, JobNotFound, ResultTimeout, UnknownTaskError
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .openapi import openapi_document
from .options import timeout_limit_s
from .registry import validation_errors
from .states import JobStatus
from .stats import known_queues, queue_stats, running_jobs
from .timeparse import parse_when_ms

logger = logging.getLogger("jobq.api")
PUBLIC = frozenset({"/", "/dashboard", "/openapi.json", "/livez", "/metrics"})
CLIENT = web.AppKey("client", Client)
METRICS = web.AppKey("metrics", Metrics)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(value: BaseModel | Sequence[Any], status: int = 200) -> web.Response:
    if isinstance(value, BaseModel):
        body = value.model_dump_json().encode()
    else:
        body = orjson.dumps([v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value])
    return web.Response(body=body, status=status, content_type="application/json")


def _error(status: int, message: str, fields: Sequence[tuple[str, str]] = ()) -> web.Response:
    out = ErrorOut(error=message, fields=[{"field": f, "message": m} for f, m in fields])
    response = _json(out, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="jobq"'
    return response


def _auth_middleware(token: str | None) -> Any:
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is None or request.path in PUBLIC:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <JOBQ_API_TOKEN>)")
        return await handler(request)

    return auth


class BodyNotJson(ValueError):
    """The request body could not be parsed as JSON (answered with 400)."""


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BodyNotJson as exc:
        return _error(400, str(exc))
    except InvalidPayload as exc:
        return _error(422, str(exc), [(f"payload.{f}" if f != "(payload)" else "payload", m) for f, m in exc.errors])
    except UnknownTaskError as exc:
        return _error(422, str(exc), [("task", str(exc))])
    except InvalidJobOptions as exc:
        return _error(422, str(exc))
    except ValidationError as exc:
        return _error(422, "invalid request body", validation_errors(exc))
    except JobNotFound as exc:
        return _error(404, str(exc))
    except (RedisError, OSError) as exc:
        logger.warning("request %s %s failed: %s", request.method, request.path, exc)
        return _error(503, f"Redis is unreachable: {type(exc).__name__}")


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise BodyNotJson(f"the body is not JSON: {exc}") from None
    return model.model_validate(data)


def _queue(request: web.Request) -> str:
    return request.query.get("queue") or request.app[CLIENT].settings.queue_name


def _float(request: web.Request, name: str, default: float, high: float) -> float:
    try:
        value = float(request.query.get(name, default))
    except ValueError:
        raise InvalidJobOptions(f"{name} must be a number of seconds") from None
    if not 0 <= value <= high:
        raise InvalidJobOptions(f"{name} must be between 0 and {high:g} seconds")
    return value


def _filter(request: web.Request) -> DeadLetterFilter:
    q = request.query
    try:
        since = parse_when_ms(q["since"]) if "since" in q else None
        until = parse_when_ms(q["until"]) if "until" in q else None
    except ValueError as exc:
        raise InvalidJobOptions(str(exc)) from None
    return DeadLetterFilter(q.get("task"), q.get("error_type"), since, until)


def _store(request: web.Request, queue: str | None = None) -> DeadLetterStore:
    client = request.app[CLIENT]
    return DeadLetterStore(client.redis, queue or _queue(request), job_expires_s=client.settings.job_expires_s)


async def enqueue(request: web.Request) -> web.Response:
    body: EnqueueBody = await _body(request, EnqueueBody)
    key = request.headers.get("Idempotency-Key")
    if key and body.job_id and key != body.job_id:
        raise InvalidJobOptions("the Idempotency-Key header and job_id differ; give one of them")
    handle = await request.app[CLIENT].enqueue(
        body.task,
        body.payload,
        job_id=key or body.job_id,
        defer_by=body.defer_by,
        defer_until=body.defer_until,
        timeout=body.timeout,
        queue=body.queue,
    )
    out = EnqueuedOut(job_id=handle.job_id, queue=handle.queue_name, created=handle.created)
    return _json(out, 201 if handle.created else 200)


async def job_status(request: web.Request) -> web.Response:
    info = await request.app[CLIENT].job(request.match_info["job_id"], queue=_queue(request)).status()
    if info.status is JobStatus.NOT_FOUND:
        raise JobNotFound(f"no job {info.job_id} on queue {_queue(request)!r}")
    return _json(JobOut.of(info))


async def job_result(request: web.Request) -> web.Response:
    handle = request.app[CLIENT].job(request.match_info["job_id"], queue=_queue(request))
    try:
        result = await handle.wait(timeout=_float(request, "wait", 0, 60))
    except ResultTimeout:
        return _json(JobOut.of(await handle.status()), 202)
    return _json(ResultOut.of(result))


async def job_abort(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    status = await request.app[CLIENT].abort(job_id, queue=_queue(request), wait=_float(request, "wait", 0, 60) or None)
    if status is JobStatus.NOT_FOUND:
        raise JobNotFound(f"no job {job_id} on queue {_queue(request)!r}")
    return _json(AbortOut(job_id=job_id, status=status.value))


async def queues(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    return _json(await known_queues(client.redis, client.settings.queue_name))


async def stats(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    return _json(StatsOut.of(await queue_stats(client.redis, _queue(request), now=client.clock())))


async def running(request: web.Request) -> web.Response:
    limit = int(_float(request, "limit", 50, 500))
    client = request.app[CLIENT]
    found = await running_jobs(client.redis, _queue(request), limit=limit, now=client.clock())
    return _json([RunningOut.of(j) for j in found])


async def dead_letters(request: web.Request) -> web.Response:
    limit = int(_float(request, "limit", 50, 1000))
    entries = await _store(request).list(_filter(request), limit=limit)
    return _json([DeadLetterOut.of(e) for e in entries])


async def dead_letter(request: web.Request) -> web.Response:
    return _json(DeadLetterOut.of(await _store(request).show(request.match_info["job_id"]), with_envelope=True))


async def replay_one(request: web.Request) -> web.Response:
    try:
        done = await _store(request).replay(request.match_info["job_id"])
    except ValueError as exc:
        return _error(409, str(exc))
    return _json(CountOut(count=int(done)))


def _selection(selection: DeadLetterSelection) -> DeadLetterFilter:
    where = DeadLetterFilter(
        selection.task,
        selection.error_type,
        None if selection.since is None else round(selection.since.timestamp() * 1000),
        None if selection.until is None else round(selection.until.timestamp() * 1000),
    )
    if where == DeadLetterFilter() and not selection.all:
        raise InvalidJobOptions("give a filter (task, error_type, since, until) or all=true")
    return where


async def replay_many(request: web.Request) -> web.Response:
    selection: DeadLetterSelection = await _body(request, DeadLetterSelection)
    return _json(CountOut(count=await _store(request).replay_many(_selection(selection))))


async def purge_one(request: web.Request) -> web.Response:
    return _json(CountOut(count=int(await _store(request).purge(request.match_info["job_id"]))))


async def purge_many(request: web.Request) -> web.Response:
    selection: DeadLetterSelection = await _body(request, DeadLetterSelection)
    where = _selection(selection)
    if not selection.confirm:
        raise InvalidJobOptions("purging deletes dead letters for good: set confirm=true")
    return _json(CountOut(count=await _store(request).purge_many(where)))


async def tasks(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    out = [
        TaskOut(
            name=t.name,
            timeout_s=timeout_limit_s(t, client.settings.job_timeout_s),
            max_tries=t.retry_policy(client.settings.retry_policy).max_tries,
            payload_schema=t.payload_model.model_json_schema(),
        )
        for t in sorted(client.registry, key=lambda t: t.name)
    ]
    return _json(out)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[CLIENT].registry))


async def dashboard(_: web.Request) -> web.Response:
    page = resources.files("worker").joinpath("dashboard.html").read_text(encoding="utf-8")
    return web.Response(text=page, content_type="text/html")


async def to_dashboard(_: web.Request) -> web.Response:
    raise web.HTTPFound("/dashboard")


async def livez(_: web.Request) -> web.Response:
    return web.json_response({"live": True})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(client: Client, metrics_: Metrics, *, token: str | None) -> web.Application:
    """The API over ``client`` (its settings, registry and Redis); ``token=None`` means no authentication."""
    app = web.Application(middlewares=[_errors, _auth_middleware(token)], client_max_size=8 * 1024 * 1024)
    app[CLIENT] = client
    app[METRICS] = metrics_
    r = app.router
    r.add_get("/", to_dashboard)
    r.add_get("/dashboard", dashboard)
    r.add_get("/openapi.json", openapi)
    r.add_get("/livez", livez)
    r.add_get("/metrics", metrics)
    r.add_get("/v1/tasks", tasks)
    r.add_post("/v1/jobs", enqueue)
    r.add_get("/v1/jobs/{job_id}", job_status)
    r.add_get("/v1/jobs/{job_id}/result", job_result)
    r.add_post("/v1/jobs/{job_id}/abort", job_abort)
    r.add_get("/v1/queues", queues)
    r.add_get("/v1/stats", stats)
    r.add_get("/v1/running", running)
    r.add_get("/v1/dead-letters", dead_letters)
    r.add_post("/v1/dead-letters/replay", replay_many)
    r.add_post("/v1/dead-letters/purge", purge_many)
    r.add_get("/v1/dead-letters/{job_id}", dead_letter)
    r.add_post("/v1/dead-letters/{job_id}/replay", replay_one)
    r.add_delete("/v1/dead-letters/{job_id}", purge_one)
    return app
