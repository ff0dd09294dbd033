"""Pausing a queue: nothing is claimed from it, enqueues still land, a resume lets the jobs run (none lost)."""

from __future__ import annotations

from tests.unit.harness import Harness
from worker import JobStatus, queue_stats
from worker.engine.marker import MarkerWatch
from worker.engine.pacing import PAUSED_POLL_FACTOR, ClaimPacing
from worker.engine.wakeup import WakeUp


async def test_a_paused_queue_takes_enqueues_but_runs_nothing_until_resumed(harness: Harness) -> None:
    before = await harness.client.enqueue("add", {"a": 1, "b": 2})
    assert await harness.client.pause(by="test") is True
    assert await harness.client.pause() is False  # paused already: the first pause is kept
    pause = await harness.client.pause_of()
    assert pause is not None
    assert pause.by == "test"
    during = await harness.client.enqueue("add", {"a": 2, "b": 2})
    assert await harness.run_due() == 0
    assert [(await h.status()).status for h in (before, during)] == [JobStatus.QUEUED, JobStatus.QUEUED]
    stats = await queue_stats(harness.redis, harness.settings.queue_name, now=harness.clock())
    assert (stats.paused, stats.ready) == (True, 2)
    assert await harness.redis.get("arq:retry:" + before.job_id) is None  # no start was counted
    assert await harness.client.resume() is True
    assert await harness.client.resume() is False
    assert await harness.client.pause_of() is None
    assert await harness.run_due() == 2
    assert [(await h.result(timeout_s=1)).total for h in (before, during)] == [3, 4]


async def test_pausing_one_queue_leaves_another_alone(harness: Harness) -> None:
    await harness.client.pause("other")
    job = await harness.client.enqueue("add", {"a": 1, "b": 1})
    assert await harness.run_due() == 1
    assert (await job.result(timeout_s=1)).total == 2


async def test_a_worker_that_found_its_queue_paused_polls_rarely_and_claims_on_the_marker(harness: Harness) -> None:
    marker = MarkerWatch(harness.redis, "q", WakeUp(), block_s=1.0)
    marker.available = True
    pacing = ClaimPacing(marker, poll_delay_s=5.0, clock=harness.clock)
    pacing.claimed(filled=False, next_due_ms=None, paused=True)
    assert not pacing.needed(pacing.now_ms())  # no claim just because a poll is due...
    assert pacing.idle_wait_s(True, None) > 5.0 * (PAUSED_POLL_FACTOR - 1)  # ...it sleeps 12 polls
    pacing.claimed(filled=False, next_due_ms=None, paused=False)
    assert pacing.idle_wait_s(True, None) <= 5.0
