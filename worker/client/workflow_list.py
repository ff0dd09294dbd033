"""The workflows enqueued most recently, from the index ``jobq:workflows`` and each one's record.

The index holds the newest :data:`~worker.protocol.keys.WORKFLOWS_KEPT` workflows by activation time; a member
whose record expired is dropped here, by the reader that finds it gone. A listed workflow's state is what its
record says: ``succeeded`` or ``failed`` once a step's end ended it (worker/engine/workflow_progress.py), else
``running``; :meth:`~worker.client.workflow_status.WorkflowHandle.status` reads every step's.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from worker.client.workflow_status import WorkflowState
from worker.errors import InvalidJobOptions
from worker.protocol.keys import WORKFLOWS_KEPT, WORKFLOWS_KEY, workflow_key

__all__ = ["WorkflowSummary", "list_workflows"]

_ENDED = {b"succeeded": WorkflowState.SUCCEEDED, b"failed": WorkflowState.FAILED}


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One workflow in a list: its id, state (from its record), number of steps and when it was enqueued."""

    workflow_id: str
    state: WorkflowState
    steps: int
    created_ms: int | None


async def list_workflows(redis: ArqRedis, limit: int = 50) -> list[WorkflowSummary]:
    """The ``limit`` workflows enqueued most recently, newest first (two round trips)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= WORKFLOWS_KEPT:
        raise InvalidJobOptions(f"limit must be an integer from 1 to {WORKFLOWS_KEPT}, got {limit!r}", field="limit")
    ids = [i.decode() for i in await redis.zrevrange(WORKFLOWS_KEY, 0, limit - 1)]
    if not ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for workflow_id in ids:
            pipe.hmget(workflow_key(workflow_id), ["state", "ended", "steps", "created"])
        records = await pipe.execute()
    found, gone = [], []
    for workflow_id, (state, ended, steps, created) in zip(ids, records, strict=True):
        if state != b"running":
            gone.append(workflow_id)  # expired (a staged one is never indexed)
            continue
        found.append(
            WorkflowSummary(
                workflow_id,
                _ENDED.get(ended or b"", WorkflowState.RUNNING),
                int(steps or 0),
                int(created) if created else None,
            )
        )
    if gone:
        await redis.zrem(WORKFLOWS_KEY, *gone)
    return found
