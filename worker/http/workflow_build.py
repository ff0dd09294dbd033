"""A workflow's JSON tree (:class:`~worker.http.workflow_models.WorkflowBody`) built into steps, chains, groups
and chords of registered tasks, with every refusal naming the field by its path from the body.

Tasks are found by name in the API's registry, as ``POST /v1/jobs`` finds them. Every step is checked first
(its task, queue and payload), and each problem is named (``workflow.chain.1.payload.value``); then the
chains and chords are built, which checks that each step can take what comes before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from worker.errors import InvalidPayload, UnknownTaskError
from worker.http.requests import RequestRefused
from worker.http.workflow_models import NODE_TAGS, ChainBody, ChordBody, GroupBody, NodeBody, StepBody
from worker.queue_names import queue_name_problem
from worker.taskdef.registry import TaskDef, TaskRegistry, validation_errors
from worker.taskdef.workflow import Node, Step, WorkflowDefinitionError, chain, chord, group, step

__all__ = ["ROOT", "body_field", "build_workflow"]

#: The body's field that holds the tree: the start of every node's path.
ROOT = "workflow"
Problems = list[tuple[str, str]]


def body_field(loc: Sequence[int | str]) -> str:
    """A pydantic error location in a workflow body as a dotted path, without the node union's tags."""
    return ".".join(str(part) for part in loc if part not in NODE_TAGS)


def build_workflow(node: NodeBody, registry: TaskRegistry) -> tuple[Node, int]:
    """The workflow ``node`` describes and its number of steps; :class:`RequestRefused` (422) naming each bad
    field otherwise."""
    problems: Problems = []
    steps = _steps(node, ROOT, registry, problems)
    if problems:
        raise _refused(problems)
    return _build(node, ROOT, steps), len(steps)


def _refused(problems: Problems) -> RequestRefused:
    detail = "; ".join(f"{field}: {message}" for field, message in problems)
    return RequestRefused(422, f"invalid workflow: {detail}", problems)


def _steps(node: NodeBody, path: str, registry: TaskRegistry, problems: Problems) -> dict[str, Step]:
    """Every step of ``node`` by its path, checked; each problem is added to ``problems``."""
    found: dict[str, Step] = {}
    if isinstance(node, StepBody):
        built = _step(node, path, registry, problems)
        if built is not None:
            found[path] = built
        return found
    for member_path, member in _members(node, path):
        found.update(_steps(member, member_path, registry, problems))
    return found


def _members(node: NodeBody, path: str) -> list[tuple[str, NodeBody]]:
    if isinstance(node, ChainBody):
        return [(f"{path}.chain.{i}", m) for i, m in enumerate(node.chain)]
    if isinstance(node, GroupBody):
        return [(f"{path}.group.{i}", m) for i, m in enumerate(node.group)]
    if isinstance(node, ChordBody):
        members: list[tuple[str, NodeBody]] = [(f"{path}.chord.group.{i}", m) for i, m in enumerate(node.chord.group)]
        return [*members, (f"{path}.chord.callback", node.chord.callback)]
    return []


def _step(body: StepBody, path: str, registry: TaskRegistry, problems: Problems) -> Step | None:
    before = len(problems)
    try:
        task = registry.get(body.task)
    except UnknownTaskError as exc:
        problems.append((f"{path}.task", str(exc)))
        return None
    if body.queue is not None and (problem := queue_name_problem(body.queue)) is not None:
        problems.append((f"{path}.queue", f"the queue name {problem}"))
    options: dict[str, Any] = {
        k: v
        for k, v in (("queue", body.queue), ("priority", body.priority), ("timeout_s", body.timeout_s))
        if v is not None
    }
    if body.into is not None:
        problems.extend(_partial_payload_problems(task, body, path))
    elif body.payload is not None:
        try:
            task.validate(body.payload)
        except InvalidPayload as exc:
            problems.extend((_payload_field(path, f), m) for f, m in exc.errors)
    if len(problems) > before:
        return None
    try:
        return step(task, body.payload, into=body.into, **options)
    except (InvalidPayload, WorkflowDefinitionError) as exc:
        problems.append((f"{path}.payload", str(exc)))
        return None


def _partial_payload_problems(task: TaskDef[Any, Any], body: StepBody, path: str) -> Problems:
    """What is wrong with a step that takes the previous result ``into`` a field: the field must be one of the
    payload's, and the rest of the payload (given now) must validate, the ``into`` field aside."""
    fields = task.payload_model.model_fields
    if body.into not in fields:
        return [(f"{path}.into", f"{body.into!r} is not a field of {task.payload_model.__name__} "
                                 f"(its fields: {', '.join(fields) or 'none'})")]  # fmt: skip
    try:
        task.payload_model.model_validate(body.payload or {})
    except ValidationError as exc:
        return [
            (_payload_field(path, f), m)
            for (f, m), err in zip(validation_errors(exc), exc.errors(), strict=True)
            if not err["loc"] or err["loc"][0] != body.into
        ]
    return []


def _payload_field(path: str, field: str) -> str:
    return f"{path}.payload" if field == "(payload)" else f"{path}.payload.{field}"


def _build(node: NodeBody, path: str, steps: dict[str, Step]) -> Node:
    """The chains, groups and chords over the checked ``steps``; a step that cannot take what comes before it
    is refused naming the chain or chord."""
    if isinstance(node, StepBody):
        return steps[path]
    members = [_build(m, member_path, steps) for member_path, m in _members(node, path)]
    try:
        if isinstance(node, ChainBody):
            return chain(*members)
        if isinstance(node, GroupBody):
            return group(members)
        callback = members.pop()
        assert isinstance(callback, Step)
        return chord(group(members), callback)
    except WorkflowDefinitionError as exc:
        kind = "chain" if isinstance(node, ChainBody) else "chord"
        raise _refused([(f"{path}.{kind}", str(exc))]) from None
