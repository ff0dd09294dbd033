"""A workflow's end, as its steps' ends make it: its record says ``ended`` (succeeded or failed) and the try that
ended it carries the event (``TryJob.workflow_event``) for the middlewares (the workflow metrics).

Called after the step's own end is written (fenced: a step's end is written once), with one script call, and
only for the steps that can end a workflow: its last steps when they succeed, any step of an ``on_failure="stop"``
workflow (and a last step of any) when it fails for good or is aborted. A worker that dies between the two
writes leaves the workflow's record without ``ended``; its steps' statuses still tell its state.
"""

from __future__ import annotations

import logging

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from worker.engine.try_records import TryJob
from worker.protocol.keys import workflow_key
from worker.protocol.scripts import Scripts

logger = logging.getLogger("jobq.worker")

#: The events a step's end may carry.
COMPLETED, FAILED = "completed", "failed"


class WorkflowProgress:
    """Records the end of the workflows whose steps this worker ends (worker/protocol/lua/workflow_end.lua)."""

    def __init__(self, redis: ArqRedis) -> None:
        self._script = Scripts.of(redis)["workflow_end"]

    async def succeeded(self, job: TryJob, now_ms: int) -> None:
        """``job`` succeeded: a last step counts its workflow's last steps down."""
        step = job.workflow
        if step is not None and step.last and await self._end(step.workflow_id, "done", job.job_id, now_ms):
            job.workflow_event = COMPLETED

    async def failed(self, job: TryJob, now_ms: int) -> None:
        """``job`` failed for good (or was aborted): the first such step of a stopping workflow fails it."""
        step = job.workflow
        if step is None or not (step.stop or step.last):
            return
        if await self._end(step.workflow_id, "failed", job.job_id, now_ms):
            job.workflow_event = FAILED

    async def _end(self, workflow_id: str, kind: str, job_id: str, now_ms: int) -> bool:
        try:
            return bool(await self._script([workflow_key(workflow_id)], [kind, job_id, now_ms]))
        except (RedisError, OSError) as exc:  # the step's end is written: only the record's summary is missed
            logger.warning("workflow %s: its end (%s) was not recorded: %s", workflow_id, kind, exc)
            return False
