"""The workflow routes' bodies: a workflow's tree as JSON (in), and its status, tree and list (out).

A node of the tree is one of four JSON objects, told apart by their key (so an error names the node's path,
``workflow.chain.1.payload.value``, not a guess among four models):

- a step ``{"task": name, "payload": {...}, "into": field, "queue": ..., "priority": ..., "timeout_s": ...}``;
- ``{"chain": [node, ...]}``, ``{"group": [node, ...]}``;
- ``{"chord": {"group": [node, ...], "callback": step}}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from worker.client.checks import MAX_JOB_ID_LEN
from worker.client.workflow_list import WorkflowSummary
from worker.client.workflow_status import StepState, WorkflowState, WorkflowStatus
from worker.protocol.priority import MAX_PRIORITY
from worker.states import JobStatus

__all__ = [
    "MAX_WORKFLOW_ID_LEN",
    "NODE_TAGS",
    "ChainBody",
    "ChordBody",
    "ChordParts",
    "GroupBody",
    "NodeBody",
    "StepBody",
    "StepOut",
    "TreeNodeOut",
    "WorkflowAbortOut",
    "WorkflowBody",
    "WorkflowEnqueuedOut",
    "WorkflowOut",
    "WorkflowSummaryOut",
    "tree_out",
]

#: The longest workflow id the API takes: room is left for its steps' paths (``.0.3.1``) within a job id.
MAX_WORKFLOW_ID_LEN = 200
#: The tags of the node union: pydantic puts them in an error's location, the API takes them out again.
NODE_TAGS = frozenset({"<step>", "<chain>", "<group>", "<chord>"})
_CLOSED = ConfigDict(extra="forbid")


def _node_kind(value: Any) -> str | None:
    """Which of the four node objects ``value`` is, by its key (``None``: none of them)."""
    if isinstance(value, BaseModel):
        return _TAG_OF.get(type(value).__name__)
    if not isinstance(value, dict):
        return None
    for key in ("chain", "group", "chord"):
        if key in value:
            return f"<{key}>"
    return "<step>" if "task" in value else None


class StepBody(BaseModel):
    """One step: a registered task and its payload, or (no payload) the previous result as its payload."""

    model_config = _CLOSED
    task: str = Field(min_length=1, description="Registered task name (see GET /v1/tasks).")
    payload: dict[str, Any] | None = Field(
        None,
        description="Validated against the task's model. Leave it out to make the previous result the payload; "
        "with `into`, the rest of the payload.",
    )
    into: str | None = Field(None, min_length=1, description="The payload field the previous result goes into.")
    queue: str | None = Field(None, description="Queue (default: the task's, else the API's JOBQ_QUEUE_NAME).")
    priority: int | None = Field(None, ge=0, le=MAX_PRIORITY, description="Priority within the queue.")
    timeout_s: float | None = Field(None, gt=0, description="Time limit of each try, in seconds.")


class ChainBody(BaseModel):
    """Nodes run one after the other, each receiving the previous one's result."""

    model_config = _CLOSED
    chain: list[NodeBody] = Field(min_length=1)


class GroupBody(BaseModel):
    """Nodes run in parallel; the group's result is the list of their results, in order."""

    model_config = _CLOSED
    group: list[NodeBody] = Field(min_length=1)


class ChordParts(BaseModel):
    """A chord's group, and the step that receives the list of its results."""

    model_config = _CLOSED
    group: list[NodeBody] = Field(min_length=1)
    callback: StepBody


class ChordBody(BaseModel):
    """A group, then one callback with the list of the group's results."""

    model_config = _CLOSED
    chord: ChordParts


_TAG_OF = {"StepBody": "<step>", "ChainBody": "<chain>", "GroupBody": "<group>", "ChordBody": "<chord>"}

#: A node of a workflow's tree.
NodeBody = Annotated[
    Annotated[StepBody, Tag("<step>")]
    | Annotated[ChainBody, Tag("<chain>")]
    | Annotated[GroupBody, Tag("<group>")]
    | Annotated[ChordBody, Tag("<chord>")],
    Discriminator(
        _node_kind,
        custom_error_type="workflow_node",
        custom_error_message='a node is a step {"task": ...}, {"chain": [...]}, {"group": [...]} or '
        '{"chord": {"group": [...], "callback": {...}}}',
    ),
]


class WorkflowBody(BaseModel):
    """A workflow to enqueue: its tree, its id (optional) and what a step failing for good does."""

    workflow: NodeBody = Field(description="The tree of steps: a step, a chain, a group or a chord.")
    workflow_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_WORKFLOW_ID_LEN,
        description="The workflow's id (default: a random one); its steps' job ids are `<id>.<path>`, at most "
        f"{MAX_JOB_ID_LEN} characters. "
        "An id that is taken is refused (409).",
    )
    on_failure: Literal["stop", "continue"] = Field(
        "stop",
        description="`stop`: a step that fails for good cancels what waits on it; `continue`: the steps after "
        'it run, each receiving the outcomes `{"ok", "value" | "error"}` of the steps before it.',
    )


for _model in (ChainBody, GroupBody, ChordParts, ChordBody, WorkflowBody):
    _model.model_rebuild()


class WorkflowEnqueuedOut(BaseModel):
    """An enqueued workflow: its id, how many steps it has and its last steps (their results end it)."""

    workflow_id: str
    steps: int
    last: list[str] = Field(description="The job ids of the steps nothing waits for (GET /v1/jobs/{id}/result).")


class StepOut(BaseModel):
    """One step of a workflow: its job id, task, status and queue (and the job whose failure cancelled it)."""

    job_id: str
    task: str
    status: str = Field(description=f"One of {', '.join(s.value for s in JobStatus)}.")
    queue: str | None = None
    cancelled_by: str | None = None

    @classmethod
    def of(cls, s: StepState) -> StepOut:
        return cls(job_id=s.job_id, task=s.task, status=s.status.value, queue=s.queue, cancelled_by=s.cancelled_by)


class TreeNodeOut(BaseModel):
    """A node of a workflow's tree: a step (with its job id, task and status) or a chain, group or chord of
    ``members`` (a chord's are its group, then its callback)."""

    kind: Literal["step", "chain", "group", "chord"]
    job_id: str | None = None
    task: str | None = None
    status: str | None = None
    members: list[TreeNodeOut] = Field(default_factory=list)


def tree_out(tree: dict[str, Any], statuses: dict[str, StepState]) -> TreeNodeOut:
    """A workflow's stored tree (:attr:`~worker.WorkflowStatus.tree`) with each step's status."""
    kind = tree.get("k")
    if kind == "step":
        job_id = str(tree.get("id", "?"))
        known = statuses.get(job_id)
        status = known.status.value if known is not None else JobStatus.NOT_FOUND.value
        return TreeNodeOut(kind="step", job_id=job_id, task=str(tree.get("t", "?")), status=status)
    members = [tree_out(m, statuses) for m in tree.get("n", []) if isinstance(m, dict)]
    return TreeNodeOut(kind=kind if kind in ("chain", "group", "chord") else "group", members=members)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


class WorkflowOut(BaseModel):
    """A workflow's state, its steps in tree order, how many are in each status, and its tree."""

    workflow_id: str
    state: str = Field(description=f"One of {', '.join(s.value for s in WorkflowState if s.value != 'not_found')}.")
    on_failure: str
    created_at: datetime | None = None
    counts: dict[str, int] = Field(description="How many steps are in each status.")
    steps: list[StepOut]
    tree: TreeNodeOut | None = Field(None, description="The tree of steps, each with its status.")

    @classmethod
    def of(cls, status: WorkflowStatus) -> WorkflowOut:
        by_id = {s.job_id: s for s in status.steps}
        return cls(
            workflow_id=status.workflow_id,
            state=status.state.value,
            on_failure=status.on_failure,
            created_at=_at(status.created_ms),
            counts={k.value: v for k, v in sorted(status.counts.items())},
            steps=[StepOut.of(s) for s in status.steps],
            tree=tree_out(status.tree, by_id) if status.tree else None,
        )


class WorkflowSummaryOut(BaseModel):
    """One workflow of a list: its id, state (as its record says), number of steps and when it was enqueued."""

    workflow_id: str
    state: str
    steps: int
    created_at: datetime | None = None

    @classmethod
    def of(cls, summary: WorkflowSummary) -> WorkflowSummaryOut:
        return cls(
            workflow_id=summary.workflow_id,
            state=summary.state.value,
            steps=summary.steps,
            created_at=_at(summary.created_ms),
        )


class WorkflowAbortOut(BaseModel):
    """How many steps an abort stopped (running steps cancelled, queued and blocked ones removed)."""

    workflow_id: str
    stopped: int
