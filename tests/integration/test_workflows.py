"""Workflows with real worker processes: a chord over two workers, a 200-step chain, and a chord whose workers
are SIGKILLed every second (fan-in exactly once, no member lost)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

from tests import workflow_tasks as wt
from tests.integration.harness import StartWorker, WorkerProcess
from worker import WorkflowState, chain, chord, group, step
from worker.client.producer import Client

ENV = {"JOBQ_TASK_MODULES": "tests.workflow_tasks", "JOBQ_MAX_JOBS": "50"}


async def test_a_chord_over_two_workers_calls_back_once_with_every_result_in_order(
    client: Client, start_worker: StartWorker
) -> None:
    label = uuid.uuid4().hex[:8]
    values = list(range(2000))
    flow = chord(
        group(step(wt.produce, {"value": v}) for v in values), step(wt.collect, {"label": label}, into="values")
    )
    wf = await client.enqueue_workflow(flow)
    for _ in range(2):
        start_worker(**ENV)
    result = await wf.last[0].wait(timeout_s=120)
    # Once, with every result, in the group's order (the values rise with the members).
    assert result.value == {"runs": 1, "count": 2000, "sum": sum(values), "in_order": 1}
    assert result.tries == 1
    status = await wf.wait(timeout_s=30)
    assert status.state is WorkflowState.SUCCEEDED
    assert len(status.steps) == 2001


async def test_a_chain_of_200_steps_hands_each_result_on_in_order(client: Client, start_worker: StartWorker) -> None:
    flow = chain(step(wt.increment, {"value": 0}), *[step(wt.increment) for _ in range(199)])
    wf = await client.enqueue_workflow(flow)
    start_worker(**ENV)
    result = await wf.last[0].wait(timeout_s=120)
    assert result.value == wt.Number(value=200)
    status = await wf.status()
    assert [s.job_id for s in status.steps] == [f"{wf.workflow_id}.0.{i}" for i in range(200)]


async def test_a_chord_fans_in_exactly_once_while_workers_are_sigkilled_every_second(
    client: Client, start_worker: StartWorker
) -> None:
    label = uuid.uuid4().hex[:8]
    values = list(range(2000))
    members = group(step(wt.slow_produce, {"value": v}) for v in values)
    wf = await client.enqueue_workflow(chord(members, step(wt.collect, {"label": label}, into="values")))
    # 2 workers of 10 slots, 50 ms a member: at least 5 s of work, so at least 3 kills land mid-run.
    env = {**ENV, "JOBQ_LEASE_TTL_S": "1.5", "JOBQ_MAX_JOBS": "10"}
    workers: list[WorkerProcess] = [start_worker(**env) for _ in range(2)]
    callback = wf.last[0]
    kills = 0
    deadline = time.monotonic() + 180
    while (await callback.status()).status.value not in ("succeeded", "dead_lettered") and kills < 6:
        assert time.monotonic() < deadline
        await asyncio.sleep(1.0)
        victim = workers.pop(0)
        victim.signal(signal.SIGKILL)
        kills += 1
        workers.append(start_worker(ready=False, **env))  # replaced at once, not waited for
    result = await callback.wait(timeout_s=180)
    assert kills >= 3
    assert result.value == {"runs": 1, "count": 2000, "sum": sum(values), "in_order": 1}
    assert await client.redis.get(f"wfprobe:{label}") == b"1"
    assert (await wf.wait(timeout_s=30)).state is WorkflowState.SUCCEEDED
