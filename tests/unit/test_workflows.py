"""Workflows and depends_on on fakeredis, one job at a time: fan-in, results passed on, cancellation, replay."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests import workflow_tasks as wt
from tests.unit.harness import Harness
from worker.client.dead_letters import DeadLetterStore
from worker.client.workflow_status import WorkflowState
from worker.errors import InvalidJobOptions, JobCancelled
from worker.states import JobStatus
from worker.taskdef.workflow import WorkflowDefinitionError, chain, chord, group, step


@pytest.fixture
def h(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(task_modules=["tests.workflow_tasks"])


@pytest.fixture(autouse=True)
def nothing_broken() -> Iterator[None]:
    wt.BROKEN.clear()
    yield
    wt.BROKEN.clear()


async def drain(h: Harness, rounds: int = 50) -> None:
    for _ in range(rounds):
        if not await h.run_due():
            return


def dlq(h: Harness) -> DeadLetterStore:
    return DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=h.settings.job_expires_s, clock_ms=h.clock.ms)


async def test_a_chain_hands_each_result_to_the_next_step(h: Harness) -> None:
    flow = chain(step(wt.increment, {"value": 1}), step(wt.increment), step(wt.increment), step(wt.produce))
    wf = await h.client.enqueue_workflow(flow, workflow_id="c1")
    assert [j.job_id for j in wf.last] == ["c1.0.3"]
    before = await wf.status()
    assert [s.status for s in before.steps] == [JobStatus.QUEUED] + [JobStatus.BLOCKED] * 3
    await drain(h)
    assert await wf.last[0].result(timeout_s=1) == 4
    done = await wf.wait(timeout_s=1, poll_s=0.01)
    assert done.state is WorkflowState.SUCCEEDED
    assert done.counts == {JobStatus.SUCCEEDED: 4}


async def test_a_chord_callback_gets_every_result_in_group_order_once(h: Harness) -> None:
    members = [step(wt.produce, {"value": v}) for v in (5, 1, 7, 3)]
    wf = await h.client.enqueue_workflow(chord(group(members), step(wt.total, {"label": "x"}, into="values")))
    callback = wf.last[0]
    assert (await callback.status()).status is JobStatus.BLOCKED
    await drain(h)
    result = await callback.wait(timeout_s=1)
    assert result.value == 16
    assert result.tries == 1


async def test_a_group_of_chains_feeds_a_callback_with_each_chains_last_result(h: Harness) -> None:
    chains = [chain(step(wt.increment, {"value": v}), step(wt.increment), step(wt.produce)) for v in (10, 20)]
    wf = await h.client.enqueue_workflow(chord(group(chains), step(wt.total, into="values")))
    await drain(h)
    assert await wf.last[0].result(timeout_s=1) == 12 + 22


async def test_a_mismatched_step_is_refused_before_anything_is_written(h: Harness) -> None:
    with pytest.raises(WorkflowDefinitionError, match="total"):
        await h.client.enqueue_workflow(chain(step(wt.produce, {"value": 1}), step(wt.total)))
    assert await h.redis.keys("*") == []


async def test_a_taken_workflow_id_is_refused(h: Harness) -> None:
    await h.client.enqueue_workflow(step(wt.produce, {"value": 1}), workflow_id="same")
    with pytest.raises(InvalidJobOptions, match="taken"):
        await h.client.enqueue_workflow(step(wt.produce, {"value": 2}), workflow_id="same")


async def test_a_failed_step_cancels_its_dependents_and_a_replay_after_the_fix_completes_it(h: Harness) -> None:
    wt.BROKEN.add(2)
    members = [step(wt.maybe_fail, {"value": v}) for v in (1, 2, 3)]
    flow = chain(chord(group(members), step(wt.total, into="values")), step(wt.report, {"value": 0}))
    wf = await h.client.enqueue_workflow(flow, workflow_id="f1")
    await drain(h)
    status = await wf.status()
    assert status.state is WorkflowState.FAILED
    failed = [s for s in status.steps if s.status is JobStatus.DEAD_LETTERED]
    assert [s.job_id for s in failed] == ["f1.0.0.0.1"]
    cancelled = [s for s in status.steps if s.status is JobStatus.CANCELLED]
    assert [(s.job_id, s.cancelled_by) for s in cancelled] == [("f1.0.0.1", "f1.0.0.0.1"), ("f1.0.1", "f1.0.0.0.1")]
    with pytest.raises(JobCancelled) as cancelled_error:
        await wf.last[0].wait(timeout_s=1)
    assert cancelled_error.value.cancelled_by == "f1.0.0.0.1"
    [listed] = await h.client.workflows()
    assert (listed.workflow_id, listed.state, listed.steps) == ("f1", WorkflowState.FAILED, 5)

    wt.BROKEN.clear()  # the fix
    assert await dlq(h).replay("f1.0.0.0.1")
    await drain(h)
    assert await wf.job("f1.0.0.1").result(timeout_s=1) == 6
    assert await wf.last[0].result(timeout_s=1) == "report 0"
    assert (await wf.status()).state is WorkflowState.SUCCEEDED
    assert [w.state for w in await h.client.workflows()] == [WorkflowState.SUCCEEDED]


async def test_the_list_shows_the_newest_workflows_first_and_their_ends(h: Harness) -> None:
    for n in range(3):
        await h.client.enqueue_workflow(
            group([step(wt.produce, {"value": n}), step(wt.produce, {"value": 9})]), workflow_id=f"g{n}"
        )
        h.clock.advance(1)
    listed = await h.client.workflows(limit=2)
    assert [(w.workflow_id, w.state, w.steps) for w in listed] == [
        ("g2", WorkflowState.RUNNING, 2),
        ("g1", WorkflowState.RUNNING, 2),
    ]
    await drain(h)
    assert [w.state for w in await h.client.workflows()] == [WorkflowState.SUCCEEDED] * 3
    await h.redis.delete("jobq:wf:g0")  # expired: dropped from the index by the reader that finds it gone
    assert [w.workflow_id for w in await h.client.workflows()] == ["g2", "g1"]
    assert await h.redis.zcard("jobq:workflows") == 2
    with pytest.raises(InvalidJobOptions, match="limit"):
        await h.client.workflows(limit=0)


async def test_on_failure_continue_hands_the_callback_every_outcome(h: Harness) -> None:
    wt.BROKEN.add(2)
    members = [step(wt.maybe_fail, {"value": v}) for v in (1, 2, 3)]
    wf = await h.client.enqueue_workflow(chord(group(members), step(wt.tally, into="outcomes")), on_failure="continue")
    await drain(h)
    assert await wf.last[0].result(timeout_s=1) == {"ok": 2, "failed": 1}


async def test_depends_on_waits_for_every_dependency(h: Harness) -> None:
    a = await h.client.enqueue(wt.produce, {"value": 1})
    b = await h.client.enqueue(wt.produce, {"value": 2}, defer_by=60)
    after = await h.client.enqueue(wt.report, {"value": 9}, depends_on=[a, b.job_id])
    assert (await after.status()).status is JobStatus.BLOCKED
    await drain(h)
    assert (await after.status()).status is JobStatus.BLOCKED  # b is not due yet
    h.clock.advance(61)
    await drain(h)
    assert await after.result(timeout_s=1) == "report 9"


async def test_depends_on_a_finished_job_queues_at_once_and_an_unknown_one_is_refused(h: Harness) -> None:
    a = await h.client.enqueue(wt.produce, {"value": 1})
    await drain(h)
    after = await h.client.enqueue(wt.report, {"value": 1}, depends_on=[a])
    assert (await after.status()).status is JobStatus.QUEUED
    with pytest.raises(InvalidJobOptions, match="nope") as refused:
        await h.client.enqueue(wt.report, {"value": 1}, depends_on=["nope"])
    assert refused.value.field == "depends_on"


async def test_depends_on_a_dead_letter_is_cancelled_until_it_is_replayed(h: Harness) -> None:
    wt.BROKEN.add(5)
    a = await h.client.enqueue(wt.maybe_fail, {"value": 5})
    await drain(h)
    after = await h.client.enqueue(wt.report, {"value": 2}, depends_on=[a])
    assert (await after.status()).status is JobStatus.CANCELLED
    wt.BROKEN.clear()
    assert await dlq(h).replay(a.job_id)
    await drain(h)
    assert await after.result(timeout_s=1) == "report 2"
