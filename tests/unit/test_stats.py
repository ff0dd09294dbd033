"""queue_stats: a job that holds a lease is running, not waiting, whatever its age."""

from __future__ import annotations

from typing import Any

from arq.constants import in_progress_key_prefix

from tests.unit.harness import Harness
from worker import queue_stats


async def test_a_leased_job_is_left_out_of_ready_and_oldest_age(make_harness: Any) -> None:
    h: Harness = make_harness()
    await h.client.enqueue("add", {"a": 1, "b": 1}, job_id="long-running")
    h.clock.advance(30)
    await h.client.enqueue("add", {"a": 1, "b": 1}, job_id="waiting")
    h.clock.advance(5)
    before = await queue_stats(h.redis, h.settings.queue_name, now=h.clock())
    assert (before.ready, before.oldest_ready_age_s) == (2, 35.0)
    # The lease key is what a worker holds while it runs a job; the job stays in the sorted set.
    await h.redis.set(in_progress_key_prefix + "long-running", b"worker-1:token", px=60_000)
    after = await queue_stats(h.redis, h.settings.queue_name, now=h.clock())
    assert (after.queued, after.ready, after.deferred, after.oldest_ready_age_s) == (2, 1, 0, 5.0)
    await h.redis.set(in_progress_key_prefix + "waiting", b"worker-2:token", px=60_000)
    busy = await queue_stats(h.redis, h.settings.queue_name, now=h.clock())
    assert (busy.ready, busy.oldest_ready_age_s) == (0, 0.0)
