"""The OpenAPI 3.1 document of the HTTP API, built from the same pydantic models the API uses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from worker.http.models import (
    MAX_PAUSE_BY_LEN,
    AbortOut,
    CountOut,
    DeadLetterOut,
    DeadLetterSelection,
    EnqueueBody,
    EnqueuedOut,
    ErrorOut,
    JobOut,
    PauseBody,
    PauseOut,
    ResultOut,
    RunningOut,
    StatsOut,
    TaskOut,
)
from worker.http.requests import DEAD_LETTER_LIMIT, MAX_BODY_DEPTH, RUNNING_LIMIT, WAIT_BOUNDS_S, WORKFLOW_LIMIT
from worker.http.workflow_models import (
    WorkflowAbortOut,
    WorkflowBody,
    WorkflowEnqueuedOut,
    WorkflowOut,
    WorkflowSummaryOut,
)
from worker.protocol.keys import MAX_QUEUE_NAME_LEN
from worker.taskdef.registry import TaskRegistry

REF = "#/components/schemas/{model}"
_MODELS: list[type[BaseModel]] = [
    AbortOut, CountOut, DeadLetterOut, DeadLetterSelection, EnqueueBody, EnqueuedOut, ErrorOut, JobOut, PauseBody,
    PauseOut, ResultOut, RunningOut, StatsOut, TaskOut, WorkflowAbortOut, WorkflowBody, WorkflowEnqueuedOut,
    WorkflowOut, WorkflowSummaryOut,
]  # fmt: skip


def _ref(model: type[BaseModel] | str) -> dict[str, Any]:
    return {"$ref": REF.format(model=model if isinstance(model, str) else model.__name__)}


def _array(model: type[BaseModel] | str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(model)}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, where: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "description": description,
            "schema": schema or {"type": "string"}}  # fmt: skip


ERRORS = {
    "401": _answer("Missing or wrong bearer token.", _ref(ErrorOut)),
    "422": _answer("Invalid request; `fields` names each bad field or parameter. Nothing was written.", _ref(ErrorOut)),
    "500": _answer(
        "Redis refuses the API's ACL user a permission jobq needs; the message names it and the ACL rule that "
        "grants it.",
        _ref(ErrorOut),
    ),
    "503": _answer(
        "Redis is unreachable or refused the command, or the API is serving its connection limit.", _ref(ErrorOut)
    ),
}
#: The answers of a route that reads a JSON body.
BODY_ERRORS = {
    "400": _answer("The body is not JSON.", _ref(ErrorOut)),
    "408": _answer("The body did not arrive within JOBQ_API_READ_TIMEOUT_S.", _ref(ErrorOut)),
    "413": _answer("The body is larger than 8 MiB.", _ref(ErrorOut)),
}
#: The answer of a route whose queue (or a key of the job) holds another type of value in Redis.
WRONG_TYPE = {
    "409": _answer("The queue's Redis key (or one of the job's) holds another type of value.", _ref(ErrorOut))
}
NOT_FOUND = {"404": _answer("No such job or dead letter.", _ref(ErrorOut))}
NO_WORKFLOW = {"404": _answer("No such workflow (unknown, expired, or its enqueue did not finish).", _ref(ErrorOut))}
WORKFLOW_ID = _param("workflow_id", "path", "The workflow's id.")
QUEUE = _param(
    "queue",
    "query",
    "Queue (default: the API's JOBQ_QUEUE_NAME); printable, not starting with `jobq:` or `arq:` keys' prefixes.",
    {"type": "string", "minLength": 1, "maxLength": MAX_QUEUE_NAME_LEN},
)
JOB_ID = _param("job_id", "path", "The job's id.")
#: The queue a /v1/queues/{queue}/... route works on, named in the path (percent-encoded).
QUEUE_IN_PATH = _param(
    "queue",
    "path",
    "The queue, percent-encoded (`/` as `%2F`); the rules of the `queue` parameter apply.",
    {"type": "string", "minLength": 1, "maxLength": MAX_QUEUE_NAME_LEN},
)
#: The batch routes own /v1/dead-letters/replay and /purge, so these two ids cannot name a dead letter there.
DEAD_LETTER_ID = _param(
    "job_id",
    "path",
    "The job's id (not `replay` or `purge`: those paths are the batch routes).",
    {"type": "string", "not": {"enum": ["replay", "purge"]}},
)
FILTERS = [
    _param("task", "query", "Only this task."),
    _param("error_type", "query", "Only this error type (class name or dotted name)."),
    _param("since", "query", "Written after this: ISO 8601, or a duration ago such as 30m, 2h, 7d."),
    _param("until", "query", "Written before this: ISO 8601, or a duration ago."),
]
WAIT = _param(
    "wait",
    "query",
    f"Seconds to wait ({WAIT_BOUNDS_S[0]:g} to {WAIT_BOUNDS_S[1]:g}).",
    {"type": "number", "minimum": WAIT_BOUNDS_S[0], "maximum": WAIT_BOUNDS_S[1], "default": 0},
)


def _limit(bounds: tuple[int, int]) -> dict[str, Any]:
    low, high = bounds
    return _param(
        "limit",
        "query",
        f"At most this many ({low} to {high}).",
        {"type": "integer", "minimum": low, "maximum": high, "default": 50},
    )


def _op(summary: str, responses: dict[str, Any], *, body: type[BaseModel] | None = None,
        params: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    answers = {**responses, **ERRORS, **(BODY_ERRORS if body is not None else {})}
    if any(p["name"] == "queue" for p in params or []):
        answers.setdefault("409", WRONG_TYPE["409"])
    op: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": dict(sorted(answers.items()))}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return op


def _paths() -> dict[str, Any]:
    job = [JOB_ID, QUEUE]
    dead = [DEAD_LETTER_ID, QUEUE]
    return {
        "/v1/tasks": {"get": _op("List the registered tasks with their payload schemas.",
                                 {"200": _answer("The tasks.", _array(TaskOut))})},
        "/v1/jobs": {"post": _op(
            "Enqueue a job. The Idempotency-Key header (or job_id) makes retries of this call safe.",
            {"201": _answer("Created.", _ref(EnqueuedOut)),
             "200": _answer("A job with this idempotency key already exists; nothing was written.", _ref(EnqueuedOut)),
             **WRONG_TYPE},
            body=EnqueueBody,
            params=[_param("Idempotency-Key", "header", "The job id to use.")],
        )},
        "/v1/jobs/{job_id}": {"get": _op("A job's status, tries, timestamps, last error and progress.",
                                         {"200": _answer("The job.", _ref(JobOut)), **NOT_FOUND}, params=job)},
        "/v1/jobs/{job_id}/result": {"get": _op(
            "A finished job's value or error; waits up to `wait` seconds.",
            {"200": _answer("Finished.", _ref(ResultOut)), "202": _answer("Not finished yet.", _ref(JobOut)),
             **NOT_FOUND}, params=[*job, WAIT])},
        "/v1/jobs/{job_id}/abort": {"post": _op(
            "Abort a job: a queued one at once, a running one within about JOBQ_ABORT_CHECK_S.",
            {"200": _answer("The status after the request.", _ref(AbortOut)), **NOT_FOUND}, params=[*job, WAIT])},
        "/v1/queues": {"get": _op("Known queues (the default and those of live workers).",
                                  {"200": _answer("Queue names.", {"type": "array", "items": {"type": "string"}})})},
        "/v1/queues/{queue}/pause": {"post": _op(
            "Pause a queue: no worker claims its jobs until it is resumed; enqueues still land and running jobs "
            f'finish. An optional JSON body, `PauseBody` (`{{"by": "..."}}`, at most {MAX_PAUSE_BY_LEN} characters), '
            "says who pauses (default `api`); a pause in force is kept as it is.",
            {"200": _answer("Paused; `changed` is false when it was paused already.", _ref(PauseOut)),
             **BODY_ERRORS},
            params=[QUEUE_IN_PATH])},
        "/v1/queues/{queue}/resume": {"post": _op(
            "Resume a paused queue: an idle worker claims from it at once.",
            {"200": _answer("Resumed; `changed` is false when it was not paused.", _ref(PauseOut))},
            params=[QUEUE_IN_PATH])},
        "/v1/stats": {"get": _op("A queue right now.", {"200": _answer("Stats.", _ref(StatsOut))}, params=[QUEUE])},
        "/v1/running": {"get": _op("Jobs running now.", {"200": _answer("Running jobs.", _array(RunningOut))},
                                   params=[QUEUE, _limit(RUNNING_LIMIT)])},
        "/v1/dead-letters": {"get": _op("Dead letters, newest first.",
                                        {"200": _answer("Dead letters.", _array(DeadLetterOut))},
                                        params=[QUEUE, *FILTERS, _limit(DEAD_LETTER_LIMIT)])},
        "/v1/dead-letters/replay": {"post": _op("Replay the selected dead letters with fresh tries.",
                                                {"200": _answer("How many.", _ref(CountOut))},
                                                body=DeadLetterSelection, params=[QUEUE])},
        "/v1/dead-letters/purge": {"post": _op("Delete the selected dead letters (needs confirm=true).",
                                               {"200": _answer("How many.", _ref(CountOut))},
                                               body=DeadLetterSelection, params=[QUEUE])},
        "/v1/dead-letters/{job_id}": {
            "get": _op("One dead letter, with its envelope.", {"200": _answer("The entry.", _ref(DeadLetterOut)),
                                                               **NOT_FOUND}, params=dead),
            "delete": _op("Delete one dead letter.", {"200": _answer("0 or 1.", _ref(CountOut))}, params=dead),
        },
        "/v1/dead-letters/{job_id}/replay": {"post": _op(
            "Replay one dead letter with fresh tries.",
            {"200": _answer("0 or 1.", _ref(CountOut)), **NOT_FOUND,
             "409": _answer("A job with this id is queued already, the entry is corrupt or keeps no envelope, "
                            "or the queue's key holds another type.",
                            _ref(ErrorOut))}, params=job)},
        **_workflow_paths(),
    }  # fmt: skip


def _workflow_paths() -> dict[str, Any]:
    return {
        "/v1/workflows": {
            "post": _op(
                "Enqueue a workflow: a tree of steps (`{\"task\", \"payload\"}`), chains, groups and chords. "
                "Every step is written, or none; a refusal names the field by its path, e.g. "
                "`workflow.chain.1.payload.value`.",
                {"201": _answer("Enqueued.", _ref(WorkflowEnqueuedOut)),
                 "409": _answer("The workflow id (or a step's job id) is taken; nothing was written.", _ref(ErrorOut))},
                body=WorkflowBody),
            "get": _op("The workflows enqueued most recently, newest first.",
                       {"200": _answer("Workflows.", _array(WorkflowSummaryOut))}, params=[_limit(WORKFLOW_LIMIT)]),
        },
        "/v1/workflows/{workflow_id}": {"get": _op(
            "A workflow's state, every step's status (in tree order), the counts per status and its tree.",
            {"200": _answer("The workflow.", _ref(WorkflowOut)), **NO_WORKFLOW}, params=[WORKFLOW_ID])},
        "/v1/workflows/{workflow_id}/abort": {"post": _op(
            "Abort a workflow: its running steps are cancelled by their workers, its queued and blocked ones removed; "
            "ended steps keep their outcome.",
            {"200": _answer("How many steps it stopped.", _ref(WorkflowAbortOut)), **NO_WORKFLOW},
            params=[WORKFLOW_ID])},
    }  # fmt: skip


def openapi_document(registry: TaskRegistry) -> dict[str, Any]:
    """The API's OpenAPI 3.1 document; task payload models appear under ``components.schemas``."""
    payloads = sorted({t.payload_model for t in registry}, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "validation") for m in [*_MODELS, *payloads]], ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobq API",
            "version": "1",
            "description": "Enqueue jobs and workflows from any language, inspect and abort them, and manage dead "
            "letters. "
            "Every /v1 route needs `Authorization: Bearer <JOBQ_API_TOKEN>`. Errors are `ErrorOut` objects; "
            f"request bodies may nest objects and arrays at most {MAX_BODY_DEPTH} levels deep (the body is one).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
