"""The dead-letter store: list with filters, show, replay with fresh tries, purge, and its bounds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.harness import Harness
from worker import DeadLetterFilter, DeadLetterStore, InvalidQueueName, JobNotFound, JobStatus, Outcome
from worker.protocol.keys import marker_key


def store(h: Harness) -> DeadLetterStore:
    return DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=h.settings.job_expires_s, clock_ms=h.clock.ms)


async def dead_letter(h: Harness, task: str, payload: dict[str, Any], job_id: str, *, step_s: float = 1) -> None:
    await h.client.enqueue(task, payload, job_id=job_id)
    await h.run_due()
    h.clock.advance(step_s)


@pytest.fixture
async def filled(harness: Harness) -> Harness:
    await dead_letter(harness, "permanent", {"note": "a"}, "d1")
    await dead_letter(harness, "key_error", {}, "d2")  # retried: not yet a dead letter
    await dead_letter(harness, "permanent", {"note": "b"}, "d3")
    await harness.redis.enqueue_job("add", {"a": "x", "b": 1}, _job_id="d4")
    await harness.run_due()
    return harness


async def test_list_is_newest_first_and_filters(filled: Harness) -> None:
    s = store(filled)
    assert [e.job_id for e in await s.list()] == ["d4", "d3", "d1"]
    assert [e.job_id for e in await s.list(DeadLetterFilter(task="permanent"))] == ["d3", "d1"]
    assert [e.job_id for e in await s.list(DeadLetterFilter(error_type="InvalidPayload"))] == ["d4"]
    assert [e.job_id for e in await s.list(DeadLetterFilter(error_type="worker.errors.PermanentError"))] == ["d3", "d1"]
    first = (await s.show("d1")).failed_at_ms
    assert [e.job_id for e in await s.list(DeadLetterFilter(since_ms=first + 1))] == ["d4", "d3"]
    assert [e.job_id for e in await s.list(DeadLetterFilter(until_ms=first))] == ["d1"]
    assert [e.job_id for e in await s.list(limit=1)] == ["d4"]
    assert await s.count() == 3


async def test_show_unknown_is_not_found(filled: Harness) -> None:
    with pytest.raises(JobNotFound, match="no dead letter for job nope"):
        await store(filled).show("nope")


async def test_replay_puts_the_job_back_with_fresh_tries(harness: Harness) -> None:
    handle = await harness.client.enqueue("flaky", {"failures": 3}, job_id="again")
    for _ in range(3):
        await harness.run_due()
        harness.clock.advance(10)
    assert (await handle.wait(timeout_s=1)).outcome is Outcome.DEAD_LETTERED
    s = store(harness)
    assert await s.replay("again")
    assert await s.count() == 0
    info = await handle.status()
    assert (info.status, info.tries, info.interruptions) == (JobStatus.QUEUED, 0, 0)
    await harness.run_due()  # try 1 of 3 again: fails (failures=3 means tries 1..3 fail)
    assert (await handle.status()).tries == 1


async def test_replay_many_and_purge_many_take_filters(filled: Harness) -> None:
    s = store(filled)
    assert await s.replay_many(DeadLetterFilter(task="permanent")) == 2
    assert [e.job_id for e in await s.list()] == ["d4"]
    assert await filled.redis.zcard("arq:queue") == 3  # d1, d3 back, plus d2 waiting for its retry
    assert await s.purge_many(DeadLetterFilter(error_type="InvalidPayload")) == 1
    assert await s.count() == 0


async def test_purge_one(filled: Harness) -> None:
    s = store(filled)
    assert await s.purge("d1")
    assert not await s.purge("d1")
    with pytest.raises(JobNotFound):
        await s.show("d1")


async def test_replay_refuses_an_id_that_is_queued_again(filled: Harness) -> None:
    await filled.redis.delete("arq:result:d1")
    await filled.client.enqueue("add", {"a": 1, "b": 1}, job_id="d1")
    with pytest.raises(ValueError, match="already queued"):
        await store(filled).replay("d1")


async def test_replay_of_an_expired_job_is_refused(harness: Harness) -> None:
    await harness.redis.zadd("arq:queue", {"gone": harness.clock.ms()})
    await harness.run_due()
    with pytest.raises(ValueError, match="keeps no envelope"):
        await store(harness).replay("gone")


async def test_store_keeps_at_most_max_entries(make_harness: Any) -> None:
    h = make_harness(dead_letter_max_entries=2)
    for i in range(4):
        await dead_letter(h, "permanent", {}, f"m{i}")
    assert [e.job_id for e in await store(h).list()] == ["m3", "m2"]
    assert await h.redis.hlen("jobq:dlq:arq:queue") == 2


async def test_store_drops_entries_past_their_retention(make_harness: Any) -> None:
    h = make_harness(dead_letter_retention_s=100)
    await dead_letter(h, "permanent", {}, "old", step_s=150)
    await dead_letter(h, "permanent", {}, "new")
    assert [e.job_id for e in await store(h).list()] == ["new"]
    assert await h.redis.hexists("jobq:dlq:arq:queue", "old") == 0


async def test_a_replay_wakes_an_idle_worker_as_an_enqueue_does(filled: Harness) -> None:
    marker = marker_key(filled.settings.queue_name)
    await filled.redis.delete(marker)
    assert await store(filled).replay("d1")
    assert await filled.redis.zrange(marker, 0, -1) == [b"m"]  # armed: one blocked worker pops it


async def test_a_replay_onto_a_key_of_another_type_names_it_and_keeps_the_dead_letter(filled: Harness) -> None:
    queue = filled.settings.queue_name
    await filled.redis.delete(queue)
    await filled.redis.set(queue, "not a queue")
    with pytest.raises(InvalidQueueName, match=f"queue '{queue}' names a Redis string, not a queue"):
        await store(filled).replay("d1")
    assert (await store(filled).show("d1")).job_id == "d1"
    assert not await filled.redis.exists("arq:job:d1")
