"""Abort by id: queued jobs vanish at once, running ones are cancelled, markers never leak."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
from arq.jobs import Job

from tests.unit.harness import Harness
from worker import JobFailed, JobStatus, Outcome
from worker.protocol import serialization
from worker.protocol.scripts import ScriptCall, Scripts


async def test_queued_job_is_removed_and_recorded_as_aborted(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="q1", defer_by=60)
    assert await harness.client.abort("q1") is JobStatus.ABORTED
    assert await harness.redis.zcard("arq:queue") == 0
    assert await harness.redis.exists("arq:job:q1") == 0
    result = await handle.wait(timeout_s=1)
    assert (result.outcome, result.status, result.task) == (Outcome.ABORTED, JobStatus.ABORTED, "add")
    assert result.error is not None
    assert result.error.error_type == "worker.errors.JobAborted"
    harness.clock.advance(60)
    assert await harness.run_due() == 0  # nothing left to run
    with pytest.raises(JobFailed, match="aborted"):
        await Job("q1", harness.redis, _deserializer=serialization.loads).result(timeout=1)


async def test_running_job_is_cancelled_and_not_retried(harness: Harness) -> None:
    handle = await harness.client.enqueue("progressing", {"seconds": 5}, job_id="r1")
    await harness.worker.run_cycle()
    for _ in range(100):  # the task reports progress once it runs
        if (await handle.status()).progress is not None:
            break
        await asyncio.sleep(0.005)
    assert await harness.client.abort("r1") is JobStatus.IN_PROGRESS
    assert await harness.worker.check_aborts() == ["r1"]
    await asyncio.wait_for(asyncio.gather(*harness.worker.tasks.values()), timeout=1)
    result = await handle.wait(timeout_s=1)
    assert result.outcome is Outcome.ABORTED
    assert (await handle.status()).status is JobStatus.ABORTED
    assert await harness.redis.exists("jobq:abort:r1", "arq:job:r1", "arq:in-progress:r1") == 0
    assert await harness.redis.zscore("arq:queue", "r1") is None


async def test_abort_marker_never_reaches_a_later_job_with_the_same_id(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="reuse")
    await harness.worker.run_cycle()  # claimed...
    await harness.client.abort("reuse")  # ...abort requested while it runs...
    await asyncio.gather(*harness.worker.tasks.values())  # ...but it finishes before anyone checks
    harness.worker.tasks.clear()
    assert (await harness.client.job("reuse").wait(timeout_s=1)).success
    await harness.redis.delete("arq:result:reuse")  # the result expires
    await harness.redis.set("jobq:abort:reuse", "1")  # even a marker left behind by some crash...
    again = await harness.client.enqueue("add", {"a": 2, "b": 2}, job_id="reuse")
    assert again.created
    await harness.run_due()  # ...is cleared by the new enqueue
    assert (await again.wait(timeout_s=1)).unwrap().total == 4


async def test_abort_requested_before_the_worker_starts_the_try(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="early")
    await harness.redis.set("jobq:abort:early", "1")  # a marker set between claim and start
    await harness.run_due()
    assert (await harness.client.job("early").wait(timeout_s=1)).outcome is Outcome.ABORTED


async def test_abort_of_a_finished_or_unknown_job_changes_nothing(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="done")
    await harness.run_due()
    assert await harness.client.abort("done") is JobStatus.SUCCEEDED
    assert (await handle.wait(timeout_s=1)).success
    assert await harness.client.abort("never-existed") is JobStatus.NOT_FOUND
    assert await harness.redis.exists("jobq:abort:never-existed") == 0


async def test_abort_with_wait_returns_once_the_worker_stopped_the_job(harness: Harness) -> None:
    await harness.client.enqueue("progressing", {"seconds": 5}, job_id="w1")
    await harness.worker.run_cycle()
    await asyncio.sleep(0.01)

    async def worker_checks_soon() -> None:
        await asyncio.sleep(0.05)
        await harness.worker.check_aborts()

    checker = asyncio.create_task(worker_checks_soon())
    assert await harness.client.abort("w1", wait_s=2) is JobStatus.ABORTED
    await checker


async def test_abort_landing_while_the_outcome_is_recorded_does_not_stop_the_worker(harness: Harness) -> None:
    recording = asyncio.Event()
    release = asyncio.Event()

    async def slow_write(send: ScriptCall, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        recording.set()
        await release.wait()
        return await send(keys, args)

    stack = contextlib.ExitStack()
    stack.enter_context(Scripts.of(harness.redis).intercept("finish_many", slow_write))  # the batched end
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="late")
    await harness.worker.run_cycle()
    await recording.wait()  # the task has returned; its success is being written
    await harness.client.abort("late")
    # Its end is being written: the abort comes too late to cancel the try (TryHandle.cancel), and says so.
    assert await harness.worker.check_aborts() == []
    release.set()
    task = harness.worker.tasks.pop("late")
    await asyncio.wait({task}, timeout=1)
    assert not task.cancelled()  # arq's poll loop would re-raise a cancelled job task and stop
    task.result()
    await asyncio.sleep(0.01)  # the shielded write completes
    stack.close()
    assert (await handle.wait(timeout_s=1)).outcome is Outcome.SUCCEEDED
