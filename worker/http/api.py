"""The HTTP API (``jobq api``): enqueue from any language, inspect and abort jobs, queue stats, pause and
resume queues, dead letters, workflows (:mod:`worker.http.workflow_routes`), the dashboard, and an OpenAPI
document at ``/openapi.json``.

Every ``/v1`` route needs ``Authorization: Bearer <JOBQ_API_TOKEN>``; ``/dashboard``, ``/openapi.json``,
``/livez`` and ``/metrics`` are open. Errors are JSON ``{"error": ..., "fields": [{"field", "message"}]}``:
401 without a valid token, 400 for a body that is not JSON, 404 for an unknown job, dead letter or
workflow, 405 for a method the path does not have, 408 for a body that does not arrive in time, 409 for a
replay whose job id is taken, a workflow id that is taken or a queue name whose key holds something else,
413 for a body over 8 MiB, 422 for invalid input (nothing is written), 500 naming the permission when
Redis's ACL refuses the API's user one jobq needs, 503 when Redis is unreachable or refuses the command.
The OpenAPI document lists each route's answers and bounds; ``tests/unit/test_api_contract.py`` holds
them to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from worker.client.producer import Client
from worker.client.stats import gate_waits, known_queues, queue_stats, running_jobs, waiting_by_limit
from worker.errors import (
    InvalidJobOptions,
    JobNotFound,
    ResultTimeout,
    SerializationError,
)
from worker.http.dead_letter_routes import dead_letter, dead_letters, purge_many, purge_one, replay_many, replay_one
from worker.http.errors import auth_middleware, errors_middleware
from worker.http.models import (
    AbortOut,
    EnqueueBody,
    EnqueuedOut,
    JobOut,
    PauseBody,
    PauseOut,
    ResultOut,
    RunningOut,
    StatsOut,
    TaskOut,
)
from worker.http.openapi import openapi_document
from worker.http.requests import (
    CLIENT,
    METRICS,
    RUNNING_LIMIT,
    count,
    queue_of,
    read_body,
    seconds,
)
from worker.http.responses import json_out
from worker.http.workflow_routes import add_workflow_routes
from worker.observability.metrics import CONTENT_TYPE_LATEST, Metrics
from worker.policy import resolve_timeout_s
from worker.states import JobStatus

PUBLIC = frozenset({"/", "/dashboard", "/openapi.json", "/livez", "/metrics"})
#: The body size limit; larger bodies are answered 413.
MAX_BODY_BYTES = 8 * 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.Response]]
__all__ = ["CLIENT", "MAX_BODY_BYTES", "METRICS", "PUBLIC", "create_app"]


async def enqueue(request: web.Request) -> web.Response:
    body: EnqueueBody = await read_body(request, EnqueueBody)
    queue = queue_of(request, request.app[CLIENT].settings.queue_name if body.queue is None else body.queue)
    key = request.headers.get("Idempotency-Key")
    if key and body.job_id and key != body.job_id:
        raise InvalidJobOptions("the Idempotency-Key header and job_id differ; give one of them")
    handle = await request.app[CLIENT].enqueue(
        body.task,
        body.payload,
        job_id=key or body.job_id,
        defer_by=body.defer_by,
        defer_until=body.defer_until,
        timeout_s=body.timeout_s,
        queue=queue,
        priority=body.priority,
        dedup_key=body.dedup_key,
    )
    out = EnqueuedOut(job_id=handle.job_id, queue=handle.queue_name, created=handle.created)
    return json_out(out, 201 if handle.created else 200)


async def job_status(request: web.Request) -> web.Response:
    queue = queue_of(request)
    handle = request.app[CLIENT].job(request.match_info["job_id"], queue=queue)
    try:
        info = await handle.status()
    except SerializationError as exc:  # e.g. a result a stock arq worker pickled: say so, do not guess
        return json_out(JobOut.undecodable(handle.job_id, str(exc)))
    if info.status is JobStatus.NOT_FOUND:
        raise JobNotFound(f"no job {info.job_id} on queue {queue!r}")
    return json_out(JobOut.of(info))


async def job_result(request: web.Request) -> web.Response:
    handle = request.app[CLIENT].job(request.match_info["job_id"], queue=queue_of(request))
    wait = seconds(request, "wait", 0)
    try:
        result = await handle.wait(timeout_s=wait)
    except ResultTimeout:
        return json_out(JobOut.of(await handle.status()), 202)
    except SerializationError as exc:
        return json_out(ResultOut.undecodable(handle.job_id, str(exc)))
    return json_out(ResultOut.of(result))


async def job_abort(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    queue = queue_of(request)
    status = await request.app[CLIENT].abort(job_id, queue=queue, wait_s=seconds(request, "wait", 0) or None)
    if status is JobStatus.NOT_FOUND:
        raise JobNotFound(f"no job {job_id} on queue {queue!r}")
    return json_out(AbortOut(job_id=job_id, status=status.value))


async def queues(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    return json_out(await known_queues(client.redis, client.settings.queue_name, client.registry.queues()))


async def stats(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    queue = queue_of(request)
    stats = await queue_stats(client.redis, queue, now=client.clock())
    return json_out(StatsOut.of(stats, await gate_waits(client.redis, queue)))


#: Who a pause through the API records when its body names no one.
API_PAUSED_BY = "api"


async def pause(request: web.Request) -> web.Response:
    """Pause the queue of the path; the optional body says who pauses (``api`` otherwise)."""
    queue = queue_of(request, request.match_info["queue"])
    body: PauseBody = await read_body(request, PauseBody)
    changed = await request.app[CLIENT].pause(queue, by=API_PAUSED_BY if body.by is None else body.by)
    return json_out(PauseOut(queue=queue, paused=True, changed=changed))


async def resume(request: web.Request) -> web.Response:
    """Resume the queue of the path."""
    queue = queue_of(request, request.match_info["queue"])
    changed = await request.app[CLIENT].resume(queue)
    return json_out(PauseOut(queue=queue, paused=False, changed=changed))


async def running(request: web.Request) -> web.Response:
    limit = count(request, "limit", 50, RUNNING_LIMIT)
    client = request.app[CLIENT]
    found = await running_jobs(client.redis, queue_of(request), limit=limit, now=client.clock())
    return json_out([RunningOut.of(j) for j in found])


async def tasks(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    out = [
        TaskOut(
            name=t.name,
            timeout_s=resolve_timeout_s(None, t.timeout_s, client.settings.job_timeout_s),  # a job that asks for none
            max_tries=t.retry_policy(client.settings.retry_policy).max_tries,
            payload_schema=t.payload_model.model_json_schema(),
        )
        for t in sorted(client.registry, key=lambda t: t.name)
    ]
    return json_out(out)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[CLIENT].registry))


async def dashboard(_: web.Request) -> web.Response:
    page = resources.files("worker.http").joinpath("static", "dashboard.html").read_text(encoding="utf-8")
    return web.Response(text=page, content_type="text/html")


async def to_dashboard(_: web.Request) -> web.Response:
    raise web.HTTPFound("/dashboard")


async def livez(_: web.Request) -> web.Response:
    return web.json_response({"live": True})


async def metrics(request: web.Request) -> web.Response:
    # The queue gauges of every known queue, those without a worker too (workers export only their own queues').
    client = request.app[CLIENT]
    with contextlib.suppress(RedisError, OSError):  # Redis away: the counters still answer
        for queue in await known_queues(client.redis, client.settings.queue_name, client.registry.queues()):
            request.app[METRICS].queue_observed(await queue_stats(client.redis, queue, now=client.clock()))
            request.app[METRICS].waiting_observed(queue, waiting_by_limit(await gate_waits(client.redis, queue)))
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _only(*methods: str) -> Any:
    """A catch-all route that answers 405 naming ``methods``, the ones its path really has."""

    async def not_allowed(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, methods)

    return not_allowed


def create_app(client: Client, metrics_: Metrics, *, token: str | None) -> web.Application:
    """The API over ``client`` (its settings, registry and Redis); ``token=None`` means no authentication."""
    middlewares = [errors_middleware, auth_middleware(token, PUBLIC)]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
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
    # Any queue name may be in the path, braces too (aiohttp's default segment refuses them): {tenant}:emails.
    r.add_post("/v1/queues/{queue:[^/]+}/pause", pause)
    r.add_post("/v1/queues/{queue:[^/]+}/resume", resume)
    r.add_get("/v1/stats", stats)
    r.add_get("/v1/running", running)
    r.add_get("/v1/dead-letters", dead_letters)
    # The batch routes own their paths: a GET or DELETE of them is a 405, not a dead letter named "replay".
    for path, handler in (("/v1/dead-letters/replay", replay_many), ("/v1/dead-letters/purge", purge_many)):
        batch = r.add_resource(path)
        batch.add_route("POST", handler)
        batch.add_route("*", _only("POST"))
    r.add_get("/v1/dead-letters/{job_id}", dead_letter)
    r.add_post("/v1/dead-letters/{job_id}/replay", replay_one)
    r.add_delete("/v1/dead-letters/{job_id}", purge_one)
    add_workflow_routes(r)
    return app
