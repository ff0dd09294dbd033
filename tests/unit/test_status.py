"""status(): the state with tries, timestamps, last error and progress, at every stage."""

from __future__ import annotations

import asyncio

from tests.unit.harness import Harness
from worker import JobStatus


async def test_queued_job_shows_task_and_times(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 1}, defer_by=30)
    info = await handle.status()
    assert (info.status, info.task, info.tries, info.is_terminal) == (JobStatus.DEFERRED, "add", 0, False)
    assert info.enqueued_at is not None
    assert info.scheduled_at is not None
    assert info.enqueued_at.timestamp() == harness.clock()
    assert info.scheduled_at.timestamp() == harness.clock() + 30


async def test_running_job_shows_its_progress(harness: Harness) -> None:
    handle = await harness.client.enqueue("progressing", {"seconds": 0.2}, job_id="p")
    running = asyncio.create_task(harness.run_due())
    for _ in range(200):
        info = await handle.status()
        if info.progress is not None:
            break
        await asyncio.sleep(0.005)
    assert (info.status, info.progress, info.progress_message, info.tries) == (
        JobStatus.IN_PROGRESS,
        0.25,
        "a quarter",
        1,
    )
    await running
    done = await handle.status()
    assert (done.status, done.is_terminal, done.tries) == (JobStatus.SUCCEEDED, True, 1)
    assert done.started_at is not None
    assert done.finished_at is not None
    assert await harness.redis.exists("jobq:meta:p") == 0  # progress is cleaned up with the job


async def test_dead_letter_is_still_reported_after_the_result_expired(harness: Harness) -> None:
    handle = await harness.client.enqueue("permanent", {}, job_id="gone")
    await harness.run_due()
    await harness.redis.delete("arq:result:gone")
    info = await handle.status()
    assert (info.status, info.task, info.tries) == (JobStatus.DEAD_LETTERED, "permanent", 1)
    assert info.last_error is not None
    assert info.last_error.error_type == "worker.errors.PermanentError"
    result = await handle.wait(timeout_s=1)
    assert result.status is JobStatus.DEAD_LETTERED
