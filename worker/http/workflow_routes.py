"""The workflow routes of the HTTP API: enqueue a workflow given as JSON, list the recent ones, show one with
every step's status, abort one.

``POST /v1/workflows`` answers 422 naming the field by its path (``workflow.chain.1.payload.value``) for a tree
that is malformed, names an unknown task, holds a payload that does not validate or a step that cannot take
what comes before it, and 409 for a ``workflow_id`` that is taken; nothing is written then.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from worker.client.workflow_status import WorkflowHandle, WorkflowState
from worker.errors import InvalidJobOptions, InvalidPayload, JobNotFound
from worker.http.errors import error_response
from worker.http.requests import CLIENT, WORKFLOW_LIMIT, RequestRefused, count, read_body
from worker.http.responses import json_out
from worker.http.workflow_build import ROOT, body_field, build_workflow
from worker.http.workflow_models import (
    WorkflowAbortOut,
    WorkflowBody,
    WorkflowEnqueuedOut,
    WorkflowOut,
    WorkflowSummaryOut,
)
from worker.taskdef.workflow import WorkflowDefinitionError

__all__ = ["add_workflow_routes", "enqueue_workflow", "workflow_abort", "workflow_status", "workflows"]


async def _body(request: web.Request) -> WorkflowBody:
    try:
        body: WorkflowBody = await read_body(request, WorkflowBody)
    except ValidationError as exc:  # named by the node's path, without the union's tags
        fields = [(body_field(e["loc"]), e["msg"]) for e in exc.errors()]
        detail = "; ".join(f"{f}: {m}" for f, m in fields)
        raise RequestRefused(422, f"invalid workflow body: {detail}", fields) from None
    return body


async def enqueue_workflow(request: web.Request) -> web.Response:
    """Enqueue the workflow of the body: every step is written, or none (201)."""
    body = await _body(request)
    client = request.app[CLIENT]
    node, steps = build_workflow(body.workflow, client.registry)
    try:
        handle = await client.enqueue_workflow(node, workflow_id=body.workflow_id, on_failure=body.on_failure)
    except (WorkflowDefinitionError, InvalidPayload) as exc:  # the whole workflow's check; an envelope too large
        raise RequestRefused(422, f"invalid workflow: {exc}", [(ROOT, str(exc))]) from None
    except InvalidJobOptions as exc:
        if exc.field == "workflow_id":  # taken, or a step's job id is
            return error_response(409, str(exc), [("workflow_id", str(exc))])
        if exc.field == "job_id":  # a step's job id (<workflow id>.<path>) is too long
            raise RequestRefused(422, str(exc), [("workflow_id", str(exc))]) from None
        raise
    out = WorkflowEnqueuedOut(workflow_id=handle.workflow_id, steps=steps, last=[h.job_id for h in handle.last])
    return json_out(out, 201)


async def workflows(request: web.Request) -> web.Response:
    """The workflows enqueued most recently, newest first."""
    limit = count(request, "limit", 50, WORKFLOW_LIMIT)
    return json_out([WorkflowSummaryOut.of(s) for s in await request.app[CLIENT].workflows(limit)])


def _handle(request: web.Request) -> WorkflowHandle:
    return request.app[CLIENT].workflow(request.match_info["workflow_id"])


def _not_found(workflow_id: str) -> JobNotFound:
    return JobNotFound(f"no workflow {workflow_id} (unknown, expired, or its enqueue did not finish)")


async def workflow_status(request: web.Request) -> web.Response:
    """A workflow's state and every step's status, with its tree."""
    handle = _handle(request)
    status = await handle.status()
    if status.state is WorkflowState.NOT_FOUND:
        raise _not_found(handle.workflow_id)
    return json_out(WorkflowOut.of(status))


async def workflow_abort(request: web.Request) -> web.Response:
    """Abort a workflow's steps that have not ended; answers how many it stopped."""
    handle = _handle(request)
    if (await handle.status()).state is WorkflowState.NOT_FOUND:
        raise _not_found(handle.workflow_id)
    return json_out(WorkflowAbortOut(workflow_id=handle.workflow_id, stopped=await handle.abort()))


def add_workflow_routes(router: web.UrlDispatcher) -> None:
    """Add the workflow routes to ``router``."""
    router.add_post("/v1/workflows", enqueue_workflow)
    router.add_get("/v1/workflows", workflows)  # the same resource: a PUT of it is a 405 naming GET and POST
    router.add_get("/v1/workflows/{workflow_id}", workflow_status)
    router.add_post("/v1/workflows/{workflow_id}/abort", workflow_abort)
