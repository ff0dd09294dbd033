"""A workflow's handle: the state of every step, read in rounds of :data:`STATUS_ROUND`, and a wait for its end.

The workflow's record (``jobq:wf:<id>``) holds its tree of steps; each step is a job, so its state is read as a
job's: its result (and outcome), its lease, its blocked record, its envelope. A workflow whose record is missing
or still staged (its enqueue did not finish) does not exist.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

from worker.errors import ResultTimeout, SerializationError
from worker.protocol.dependencies import Blocked
from worker.protocol.keys import JobKeys, wait_key, workflow_key
from worker.states import STATUS_OF_OUTCOME, JobStatus, Outcome

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from worker.client.handle import HandleContext, JobHandle

__all__ = ["STATUS_ROUND", "StepState", "WorkflowHandle", "WorkflowState", "WorkflowStatus"]

#: Steps read per pipelined round trip.
STATUS_ROUND = 1000
#: Step statuses that mean the step will not run (again) without a replay.
_FAILED = frozenset({JobStatus.DEAD_LETTERED, JobStatus.ABORTED, JobStatus.FAILED, JobStatus.CANCELLED})
_ENDED = _FAILED | {JobStatus.SUCCEEDED, JobStatus.NOT_FOUND}


class WorkflowState(StrEnum):
    """Where a workflow is, from its steps' statuses."""

    RUNNING = "running"  #: some step is queued, running or blocked
    SUCCEEDED = "succeeded"  #: every step succeeded
    FAILED = "failed"  #: nothing more runs and some step failed or was cancelled (a replay may resume it)
    NOT_FOUND = "not_found"  #: unknown id, expired, or its enqueue did not finish


@dataclass(frozen=True, slots=True)
class StepState:
    """One step of a workflow: its job id, task and status (and, when cancelled, the job that caused it)."""

    job_id: str
    task: str
    status: JobStatus
    cancelled_by: str | None = None
    queue: str | None = None  #: its queue (None: read from a record that does not say)


@dataclass(frozen=True, slots=True)
class WorkflowStatus:
    """A workflow's state and the state of each of its steps, in tree order; ``tree`` is its shape (JSON:
    ``{"k": "chain" | "group" | "chord", "n": [...]}`` and ``{"k": "step", "id": ..., "t": task}``)."""

    workflow_id: str
    state: WorkflowState
    steps: list[StepState] = field(default_factory=list)
    tree: dict[str, Any] = field(default_factory=dict)
    on_failure: str = "stop"
    created_ms: int | None = None

    @property
    def counts(self) -> dict[JobStatus, int]:
        """How many steps are in each status."""
        return dict(Counter(s.status for s in self.steps))

    def step(self, job_id: str) -> StepState:
        """The state of one step, by its job id (KeyError when it is not a step of this workflow)."""
        for s in self.steps:
            if s.job_id == job_id:
                return s
        raise KeyError(job_id)


Named = tuple[str, str, str | None]  # a step's job id, task and queue


def _tree_steps(tree: dict[str, Any], into: list[Named]) -> list[Named]:
    if tree.get("k") == "step":
        queue = tree.get("q")
        into.append((str(tree["id"]), str(tree.get("t", "?")), queue if isinstance(queue, str) else None))
    else:
        for member in tree.get("n", []):
            _tree_steps(member, into)
    return into


def _state_of(statuses: list[JobStatus]) -> WorkflowState:
    """Succeeded when every step did; running while some step is queued or running (a blocked step waits for
    one of those, or for a failed one, which a replay may resume); failed otherwise."""
    if all(s is JobStatus.SUCCEEDED for s in statuses):
        return WorkflowState.SUCCEEDED
    if any(s not in _ENDED and s is not JobStatus.BLOCKED for s in statuses):
        return WorkflowState.RUNNING
    return WorkflowState.FAILED


class WorkflowHandle:
    """A reference to one workflow: its status, the handles of its last steps, a wait for its end."""

    __slots__ = ("_ctx", "_job", "last", "workflow_id")

    def __init__(self, workflow_id: str, context: HandleContext, last: list[JobHandle[Any]], job: Any) -> None:
        self.workflow_id = workflow_id
        self._ctx = context
        self._job = job  # Client.job: a handle to one step by its job id
        #: The handles of the steps nothing waits for (a chord's callback, a chain's last step), in tree order.
        self.last = last

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.workflow_id} last={[h.job_id for h in self.last]}>"

    @property
    def _redis(self) -> ArqRedis:
        return self._ctx.redis

    def job(self, job_id: str, queue: str | None = None) -> JobHandle[Any]:
        """The handle of one step, by its job id (on ``queue``: the settings' queue unless given)."""
        return self._job(job_id, queue=queue)  # type: ignore[no-any-return]

    async def load(self) -> bool:
        """Read the workflow's last steps from its record into :attr:`last`; ``False`` when it does not exist."""
        raw = await self._redis.hget(workflow_key(self.workflow_id), "last")  # type: ignore[misc]
        if raw is None:
            return False
        self.last = [self.job(str(job_id), queue) for job_id, _task, queue in orjson.loads(raw)]
        return True

    async def status(self) -> WorkflowStatus:
        """The workflow's state and every step's, read in one round trip per :data:`STATUS_ROUND` steps."""
        record = await self._redis.hgetall(workflow_key(self.workflow_id))  # type: ignore[misc]
        if not record or record.get(b"state") != b"running":
            return WorkflowStatus(self.workflow_id, WorkflowState.NOT_FOUND)
        try:
            tree = orjson.loads(record[b"tree"])
        except (KeyError, orjson.JSONDecodeError):
            return WorkflowStatus(self.workflow_id, WorkflowState.NOT_FOUND)
        named = _tree_steps(tree, [])
        steps: list[StepState] = []
        for start in range(0, len(named), STATUS_ROUND):
            steps.extend(await self._read_round(named[start : start + STATUS_ROUND]))
        created = record.get(b"created")
        return WorkflowStatus(
            self.workflow_id,
            _state_of([s.status for s in steps]),
            steps,
            tree,
            record.get(b"on_failure", b"stop").decode(),
            int(created) if created else None,
        )

    async def _read_round(self, named: list[Named]) -> list[StepState]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id, _, _ in named:
                k = JobKeys(job_id, "")
                pipe.get(k.result)
                pipe.exists(k.in_progress)
                pipe.hmget(wait_key(job_id), ["n", "cause"])
                pipe.exists(k.job)
            replies = await pipe.execute()
        states = []
        for i, (job_id, task, queue) in enumerate(named):
            raw, running, (n, cause), exists = replies[4 * i : 4 * i + 4]
            state = self._step_state(job_id, task, raw, bool(running), Blocked.of(n, cause), bool(exists))
            states.append(replace(state, queue=queue))
        return states

    def _step_state(
        self, job_id: str, task: str, raw: bytes | None, running: bool, blocked: Blocked | None, exists: bool
    ) -> StepState:
        if raw is not None:
            try:
                body = self._ctx.codec.loads_result(raw, job_id=job_id)
            except SerializationError:
                return StepState(job_id, task, JobStatus.FAILED)
            outcome = body.get("o")
            if outcome in {o.value for o in STATUS_OF_OUTCOME}:
                return StepState(job_id, task, STATUS_OF_OUTCOME[Outcome(outcome)])
            return StepState(job_id, task, JobStatus.SUCCEEDED if body.get("s") else JobStatus.FAILED)
        if running:
            return StepState(job_id, task, JobStatus.IN_PROGRESS)
        if blocked is not None:
            if blocked.cancelled_by is not None:
                return StepState(job_id, task, JobStatus.CANCELLED, blocked.cancelled_by)
            return StepState(job_id, task, JobStatus.BLOCKED)
        return StepState(job_id, task, JobStatus.QUEUED if exists else JobStatus.NOT_FOUND)

    async def abort(self) -> int:
        """Abort the workflow: its running steps are cancelled by their workers, its queued and blocked steps are
        removed (their results say ``aborted``), and what waits on them is cancelled. Returns how many steps it
        stopped; ended steps keep their outcome."""
        stopped = 0
        for s in (await self.status()).steps:
            if s.status in _ENDED or s.status is JobStatus.CANCELLED:
                continue
            after = await self.job(s.job_id, s.queue).abort()
            stopped += after in (JobStatus.ABORTED, JobStatus.IN_PROGRESS)
        return stopped

    async def wait(self, timeout_s: float | None = None, *, poll_s: float = 0.25) -> WorkflowStatus:
        """Wait until nothing more of the workflow runs (it succeeded, or failed), and return its status.

        Watches its last steps only (one round trip each poll), then reads every step once. Raises
        :class:`ResultTimeout` after ``timeout_s`` seconds.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if not self.last:
            await self.load()
        while True:
            watched = await self._read_round(
                [(h.job_id, h.task.name if h.task else "?", h.queue_name) for h in self.last]
            )
            if all(s.status in _ENDED for s in watched):
                status = await self.status()
                if status.state is not WorkflowState.RUNNING:
                    return status
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"workflow {self.workflow_id} did not end within {timeout_s:g}s")
            await asyncio.sleep(poll_s)
