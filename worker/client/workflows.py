"""Enqueueing a workflow: its tree of steps planned into jobs, then written atomically (docs/workflows-design.md).

:func:`plan_workflow` gives every step its job id (``<workflow id>.<path>``, its place in the tree), the steps it waits
for, the results its input is made of, and the steps that wait for it. :class:`WorkflowWriter` writes the steps
staged, in rounds of :data:`STAGE_ROUND` (``workflow_stage.lua``; no step is in a queue and the workflow does not
exist to a reader), then one call queues the first steps and marks the workflow running
(``workflow_activate.lua``). A producer that dies half-way leaves only staged keys, which expire: either every
step exists, or none runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel
from redis.exceptions import ResponseError

import worker.client.checks as checks
from worker.errors import EnvelopeTooLarge, InvalidJobOptions
from worker.protocol.dependencies import dependents_list
from worker.protocol.keys import (
    MARKER_PREFIX,
    NEXT_PREFIX,
    WAIT_PREFIX,
    WORKFLOWS_KEPT,
    WORKFLOWS_KEY,
    job_key_prefix,
    workflow_key,
)
from worker.protocol.options import StepInputs
from worker.protocol.records import job_record
from worker.protocol.scripts import Scripts
from worker.protocol.serialization import EnvelopeCodec
from worker.taskdef.workflow import Chain, Chord, Group, Node, Step, WorkflowDefinitionError, check

__all__ = ["STAGE_ROUND", "STEP_OPTIONS", "PlannedStep", "WorkflowPlan", "WorkflowWriter", "plan_workflow"]

#: Steps written per staging call (keeps each call short for the other clients of Redis).
STAGE_ROUND = 1000
#: The enqueue options a step takes.
STEP_OPTIONS = frozenset({"priority", "queue", "timeout_s"})
_STAGE_PREFIXES = orjson.dumps([job_key_prefix, WAIT_PREFIX, NEXT_PREFIX]).decode()

Inputs = str | list[Any]  # one step's result, or a group's (nested) list of them


@dataclass(slots=True)
class PlannedStep:
    """One step of a planned workflow."""

    job_id: str
    step: Step
    waits_for: list[str]  #: the steps it runs after
    results: Inputs | None  #: the results its input is made of (None: it has its own payload)
    dependents: list[str] = field(default_factory=list)  #: the steps that run after it
    shown: dict[str, Any] = field(default_factory=dict)  #: its node in the workflow's tree (its queue is added)


@dataclass(frozen=True, slots=True)
class WorkflowPlan:
    """A workflow's steps in tree order, its tree (for status and display) and its last steps."""

    workflow_id: str
    steps: list[PlannedStep]
    tree: dict[str, Any]

    @property
    def last(self) -> list[PlannedStep]:
        """The steps nothing waits for: when they have ended, so has the workflow."""
        return [s for s in self.steps if not s.dependents]


def _leaves(inputs: Inputs | None, into: list[str]) -> list[str]:
    if isinstance(inputs, str):
        into.append(inputs)
    elif inputs is not None:
        for member in inputs:
            _leaves(member, into)
    return into


def plan_workflow(node: Node, workflow_id: str, *, outcomes: bool = False) -> WorkflowPlan:
    """Check ``node`` (:func:`~worker.taskdef.workflow.check`; ``outcomes``: it continues past failures) and plan
    its steps as jobs."""
    check(node, outcomes=outcomes)
    steps: list[PlannedStep] = []

    def walk(n: Node, path: str, before: Inputs | None) -> tuple[Inputs, dict[str, Any]]:
        if isinstance(n, Step):
            job_id = f"{workflow_id}.{path}"
            _check_step(n, job_id)
            takes = before if (n.payload is None or n.into is not None) else None
            node_shown: dict[str, Any] = {"k": "step", "id": job_id, "t": n.task.name}
            steps.append(PlannedStep(job_id, n, _leaves(before, []), takes, shown=node_shown))
            return job_id, node_shown
        if isinstance(n, Chain):
            shown = []
            for i, member in enumerate(n.nodes):
                before, tree = walk(member, f"{path}.{i}", before)
                shown.append(tree)
            assert before is not None
            return before, {"k": "chain", "n": shown}
        if isinstance(n, Group):
            outs, shown = [], []
            for i, member in enumerate(n.nodes):
                out, tree = walk(member, f"{path}.{i}", before)
                outs.append(out)
                shown.append(tree)
            return outs, {"k": "group", "n": shown}
        assert isinstance(n, Chord)
        header, header_tree = walk(n.header, f"{path}.0", before)
        out, callback_tree = walk(n.callback, f"{path}.1", header)
        return out, {"k": "chord", "n": [header_tree, callback_tree]}

    _, tree = walk(node, "0", None)
    by_id = {s.job_id: s for s in steps}
    for s in steps:
        for dep in dict.fromkeys(s.waits_for):
            by_id[dep].dependents.append(s.job_id)
        s.waits_for = list(dict.fromkeys(s.waits_for))
    return WorkflowPlan(workflow_id, steps, tree)


def _check_step(s: Step, job_id: str) -> None:
    unknown = sorted(set(s.options) - STEP_OPTIONS)
    if unknown:
        raise WorkflowDefinitionError(
            f"{s.label}: unknown option {unknown[0]!r} (a step takes {', '.join(sorted(STEP_OPTIONS))})"
        )
    if s.task.dedup is not None or s.task.fair_by is not None:
        kind = "a dedup mode" if s.task.dedup is not None else "fair_by"
        raise WorkflowDefinitionError(f"{s.label}: a task with {kind} cannot be a workflow step")
    if len(job_id) > checks.MAX_JOB_ID_LEN:  # the workflow id is checked; its steps add only digits and dots
        checks.check_job_id(job_id, f" (the id of {s.label})")


@dataclass(frozen=True, slots=True)
class EncodedStep:
    """A planned step's envelope and placement, ready to stage."""

    planned: PlannedStep
    queue: str
    priority: int
    body: bytes


class WorkflowWriter:
    """Encodes and writes planned workflows for one client."""

    def __init__(
        self,
        scripts: Scripts,
        codec: EnvelopeCodec,
        *,
        max_envelope_bytes: int,
        queue_of: Callable[[str | None, str], str],
    ) -> None:
        self._stage = scripts["workflow_stage"]  # worker/protocol/lua/workflow_stage.lua
        self._activate = scripts["workflow_activate"]  # worker/protocol/lua/workflow_activate.lua
        self._codec = codec
        self._max_envelope = max_envelope_bytes
        self._queue_of = queue_of

    def encode(
        self, workflow_id: str, planned: PlannedStep, *, now_ms: int, keep_ms: int, outcomes: bool,
        trace: dict[str, str],
    ) -> EncodedStep:  # fmt: skip
        """The step's envelope: its payload (or the part it was given), its options and its inputs."""
        s, task_def, at = planned.step, planned.step.task, f" ({planned.step.label}, {planned.job_id})"
        payload: Any = None
        options: dict[str, Any] = {}
        if isinstance(s.payload, BaseModel):
            payload = checks.json_payload(task_def, s.payload, None)
            if task_def.rate_limit is not None and (key := task_def.rate_limit.key_for_claim(s.payload)) is not None:
                options["rate_key"] = key
        elif s.payload is not None:
            payload = s.payload  # the part of the payload a step with into= was given (checked by step())
        if (timeout := s.options.get("timeout_s")) is not None:
            options["timeout_s"] = checks.check_timeout(task_def, timeout, at)
        priority = s.options.get("priority")
        priority = task_def.priority if priority is None else checks.check_priority(task_def, priority, at)
        if priority:
            options["priority"] = priority
        if trace:
            options["trace"] = trace
        last, stop = not planned.dependents, not outcomes
        options["wf"] = StepInputs(workflow_id, planned.results, s.into, keep_ms, outcomes, last, stop).as_option()
        queue = self._queue_of(s.options.get("queue", task_def.queue), at)
        planned.shown["q"] = queue
        envelope = job_record(task_def.name, payload, now_ms, options)
        try:
            body = self._codec.dumps_job(envelope, job_id=planned.job_id, queue=queue)
        except (ValueError, TypeError) as exc:
            raise InvalidJobOptions(f"the payload of {s.label} cannot be encoded as JSON: {exc}") from None
        if len(body) > self._max_envelope:
            raise EnvelopeTooLarge(task_def.name, len(body), self._max_envelope)
        return EncodedStep(planned, queue, priority, body)

    async def write(
        self, workflow: WorkflowPlan, encoded: list[EncodedStep], *, ttl_ms: int, now_ms: int, on_failure: str
    ) -> None:
        """Stage every step, then activate the workflow; nothing runs unless every step was written."""
        token = os.urandom(8).hex()
        key = workflow_key(workflow.workflow_id)
        record = {
            "tree": orjson.dumps(workflow.tree).decode(),
            "last": orjson.dumps([[s.job_id, s.step.task.name, s.shown.get("q")] for s in workflow.last]).decode(),
            "steps": len(encoded),
            "left": len(workflow.last),  # the last steps not succeeded yet (worker/protocol/lua/workflow_end.lua)
            "on_failure": on_failure,
            "created": now_ms,
        }
        continues = "1" if on_failure == "continue" else "0"
        rounds = 0
        for start in range(0, len(encoded), STAGE_ROUND):
            rounds += 1
            packed = orjson.dumps(
                [
                    f
                    for e in encoded[start : start + STAGE_ROUND]
                    for f in (
                        e.planned.job_id, e.queue, e.body.decode(), str(len(e.planned.waits_for)), str(e.priority),
                        dependents_list(e.planned.dependents),
                    )
                ]
            )  # fmt: skip
            fields = orjson.dumps(record) if rounds == 1 else ""
            args = [packed, ttl_ms, _STAGE_PREFIXES, rounds, token, fields, continues]
            try:
                await self._stage([key], args)
            except ResponseError as exc:
                raise _refusal(exc, workflow.workflow_id) from None
        roots = orjson.dumps(
            [f for e in encoded if not e.planned.waits_for for f in (e.queue, e.planned.job_id, e.priority)]
        )
        try:
            args = [token, rounds, roots, now_ms, MARKER_PREFIX, workflow.workflow_id, ttl_ms, WORKFLOWS_KEPT]
            await self._activate([key, WORKFLOWS_KEY], args)
        except ResponseError as exc:
            raise _refusal(exc, workflow.workflow_id) from None


def _refusal(exc: ResponseError, workflow_id: str) -> Exception:
    message = str(exc)
    if message.startswith("JOBQ_WORKFLOW_EXISTS"):
        return InvalidJobOptions(f"workflow id {workflow_id!r} is taken; give another, or none", field="workflow_id")
    if message.startswith("JOBQ_STEP_EXISTS"):
        step = message.split(" ", 1)[1] if " " in message else "?"
        return InvalidJobOptions(
            f"a job with the id of step {step} exists already; nothing of workflow {workflow_id!r} runs "
            "(give another workflow id)",
            field="workflow_id",
        )
    if message.startswith("JOBQ_WORKFLOW_INCOMPLETE"):
        return InvalidJobOptions(
            f"workflow {workflow_id!r} was not fully written (its staged steps expired?); nothing of it runs"
        )
    return exc
