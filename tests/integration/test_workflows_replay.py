"""A workflow step that fails for good, with real worker processes: what waits on it (and on that) is cancelled,
naming it; replaying its dead letter after the fix resumes the workflow, which ends with the right result.

(tests/unit/test_workflows.py runs the same story one job at a time on fakeredis; here two worker processes run it,
the members racing the failure, and the "fix" is a Redis set the task reads.)
"""

from __future__ import annotations

import uuid

import pytest

from tests import workflow_tasks as wt
from tests.integration.harness import StartWorker
from worker import DeadLetterStore, JobCancelled, WorkflowState, chain, chord, group, step
from worker.client.producer import Client
from worker.states import JobStatus

ENV = {"JOBQ_TASK_MODULES": "tests.workflow_tasks", "JOBQ_MAX_JOBS": "10"}
MEMBERS = 20
BROKEN = 7


async def test_a_failed_step_cancels_its_dependents_and_its_replay_after_the_fix_completes_the_workflow(
    client: Client, start_worker: StartWorker
) -> None:
    label = uuid.uuid4().hex[:8]
    broken_key = f"wfbroken:{label}"
    await client.redis.sadd(broken_key, str(BROKEN))  # type: ignore[misc]
    await client.redis.expire(broken_key, 600)
    members = group(step(wt.fail_while_broken, {"value": v, "label": label}) for v in range(MEMBERS))
    flow = chain(chord(members, step(wt.total, into="values")), step(wt.report, {"value": 0}))
    wf = await client.enqueue_workflow(flow)
    w = wf.workflow_id
    failed, callback, last = f"{w}.0.0.0.{BROKEN}", f"{w}.0.0.1", f"{w}.0.1"
    for _ in range(2):
        start_worker(**ENV)

    status = await wf.wait(timeout_s=120)
    assert status.state is WorkflowState.FAILED
    by_id = {s.job_id: s for s in status.steps}
    assert by_id[failed].status is JobStatus.DEAD_LETTERED
    assert [(by_id[i].status, by_id[i].cancelled_by) for i in (callback, last)] == [(JobStatus.CANCELLED, failed)] * 2
    others = [s for s in status.steps if s.job_id not in (failed, callback, last)]
    assert len(others) == MEMBERS - 1
    assert {s.status for s in others} == {JobStatus.SUCCEEDED}
    with pytest.raises(JobCancelled) as cancelled:
        await wf.last[0].wait(timeout_s=5)
    assert cancelled.value.cancelled_by == failed

    await client.redis.srem(broken_key, str(BROKEN))  # type: ignore[misc]  # the fix
    s = client.settings
    assert await DeadLetterStore(client.redis, s.queue_name, job_expires_s=s.job_expires_s).replay(failed)
    # The workflow's wait, not the last step's: until the replayed step has ended, what it cancelled reads as
    # cancelled, and a handle's wait on a blocked job can miss it in the instant it is queued (it reads the
    # queue, then the blocked record), where a workflow's status also reads the job's envelope.
    done = await wf.wait(timeout_s=120)
    assert done.state is WorkflowState.SUCCEEDED
    assert done.counts == {JobStatus.SUCCEEDED: MEMBERS + 2}
    assert await wf.job(failed).result(timeout_s=5) == BROKEN
    assert await wf.job(callback).result(timeout_s=5) == sum(range(MEMBERS))
    assert await wf.last[0].result(timeout_s=5) == "report 0"
