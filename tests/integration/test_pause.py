"""Pause and resume with a real worker process and the real CLI: jobs enqueued while the queue is paused start
only after the resume, and none is lost."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.harness import StartWorker
from tests.integration.test_cli_jobs import jobq
from worker import JobRequest, JobStatus, queue_stats
from worker.client.producer import Client
from worker.protocol.keys import marker_key
from worker.settings import JobqSettings

pytestmark = pytest.mark.integration

JOBS = 50


async def test_jobs_enqueued_while_paused_start_after_the_resume_and_none_is_lost(
    settings: JobqSettings, client: Client, start_worker: StartWorker
) -> None:
    queue = settings.queue_name
    start_worker()
    paused = jobq(settings, "queue", "pause", queue, "--by", "integration test")
    assert paused.returncode == 0, paused.stderr
    handles = await client.enqueue_many([JobRequest("add", {"a": i, "b": 1}) for i in range(JOBS)])
    # The enqueue armed the queue's marker; the idle worker takes it and claims, and its claim finds the pause.
    deadline = time.monotonic() + 30
    while await client.redis.exists(marker_key(queue)):
        assert time.monotonic() < deadline, "the worker never woke for the enqueued jobs"
        await asyncio.sleep(0.05)
    stats = await queue_stats(client.redis, queue)
    assert stats.paused
    assert [(await h.status()).status for h in handles] == [JobStatus.QUEUED] * JOBS
    resumed = jobq(settings, "queue", "resume", queue)
    assert resumed.returncode == 0, resumed.stderr
    results = [await h.wait(timeout_s=60) for h in handles]
    assert [(r.success, r.tries) for r in results] == [(True, 1)] * JOBS
    totals = sorted([(await h.result(timeout_s=10)).total for h in handles])
    assert totals == [i + 1 for i in range(JOBS)]  # each ran once, none lost
