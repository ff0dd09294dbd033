"""tasks.maintenance: dead letters trimmed on schedule, queue snapshots recorded."""

from __future__ import annotations

from typing import Any

import orjson

from tests.harness import reply
from tests.unit.harness import Harness
from worker import DeadLetterStore, queue_stats


async def test_trim_drops_dead_letters_past_their_retention(make_harness: Any) -> None:
    h: Harness = make_harness(task_modules=["tasks", "tests.sample_tasks"], dead_letter_retention_s=100)
    for i in range(3):
        await h.client.enqueue("permanent", {}, job_id=f"old{i}")
    await h.run_due()
    h.clock.advance(60)
    await h.client.enqueue("permanent", {}, job_id="recent")
    await h.run_due()
    store = DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=60, clock_ms=h.clock.ms)
    assert await store.count() == 4
    h.clock.advance(90)  # no failure since: only the scheduled trim can drop the old ones now
    trim = await h.client.enqueue("trim_dead_letters", {})
    await h.run_due()
    result = (await trim.wait(timeout_s=2)).unwrap()
    assert (result.dropped, result.remaining) == (3, 1)
    assert {e.job_id for e in await store.list()} == {"recent"}


async def test_record_queue_stats_appends_a_snapshot(make_harness: Any) -> None:
    h: Harness = make_harness(task_modules=["tasks", "tests.sample_tasks"])
    await h.client.enqueue("add", {"a": 1, "b": 1}, defer_by=60)
    await h.client.enqueue("add", {"a": 1, "b": 1}, job_id="waiting")
    h.clock.advance(5)
    stats = await queue_stats(h.redis, h.settings.queue_name, now=h.clock())
    assert (stats.queued, stats.ready, stats.deferred, stats.oldest_ready_age_s) == (2, 1, 1, 5.0)
    handle = await h.client.enqueue("record_queue_stats", {})
    await h.run_due()
    assert (await handle.wait(timeout_s=2)).success
    history = [orjson.loads(x) for x in await reply(h.redis.lrange(f"jobq:stats:{h.settings.queue_name}", 0, -1))]
    assert len(history) == 1
    assert history[0]["deferred"] >= 1
