"""Corrupt per-job records written straight into Redis: the job is dead-lettered once, naming the bad key;
the claim and every other job go on."""

from __future__ import annotations

import asyncio

import pytest

from tests.harness import reply
from tests.unit.harness import Harness
from worker import DeadLetterStore, Outcome
from worker.engine.try_handle import TryHandle


def store(h: Harness) -> DeadLetterStore:
    return DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=h.settings.job_expires_s, clock_ms=h.clock.ms)


CORRUPT_ON_CLAIM = [
    pytest.param([("set", "arq:retry:{id}", "abc")], "arq:retry:{id}", id="retry-not-an-integer"),
    pytest.param([("hset", "arq:retry:{id}", "x")], "arq:retry:{id}", id="retry-wrong-type"),
    pytest.param(
        [("set", "arq:retry:{id}", "1"), ("set", "jobq:meta:{id}", "x")], "jobq:meta:{id}", id="meta-wrong-type"
    ),
    pytest.param(
        [("set", "arq:retry:{id}", "1"), ("hset", "jobq:meta:{id}", "zz")], "jobq:meta:{id}", id="meta-failures-nan"
    ),
    pytest.param(
        [("set", "arq:retry:{id}", "1"), ("hset", "jobq:meta:{id}", "-3")],
        "jobq:meta:{id}",
        id="meta-failures-negative",
    ),
    pytest.param([("hset-job", "arq:job:{id}", "x")], "arq:job:{id}", id="job-key-wrong-type"),
]


async def _corrupt(h: Harness, job_id: str, writes: list[tuple[str, str, str]]) -> None:
    for op, key, value in writes:
        key = key.format(id=job_id)
        if op == "set":
            await h.redis.set(key, value)
        elif op == "hset":
            await reply(h.redis.hset(key, "failures", value))
        else:  # the job key itself replaced by a hash
            await h.redis.delete(key)
            await reply(h.redis.hset(key, "f", value))


@pytest.mark.parametrize(("writes", "bad_key"), CORRUPT_ON_CLAIM)
async def test_a_corrupt_record_dead_letters_its_job_on_the_first_try(
    harness: Harness, writes: list[tuple[str, str, str]], bad_key: str
) -> None:
    before = await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="good-1")
    bad = await harness.client.enqueue("add", {"a": 1, "b": 2}, job_id="bad")
    after = await harness.client.enqueue("add", {"a": 2, "b": 2}, job_id="good-2")
    await _corrupt(harness, "bad", writes)
    await harness.run_due()  # never raises: one bad record does not fail the claim of the others
    assert (await before.result(timeout_s=1)).total == 2
    assert (await after.result(timeout_s=1)).total == 4
    result = await bad.wait(timeout_s=1)
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 1)
    entry = await store(harness).show("bad")
    assert entry.error_type == "worker.errors.CorruptJobRecord"
    assert bad_key.format(id="bad") in entry.message
    assert entry.tries == 1
    assert await harness.redis.zcard(harness.settings.queue_name) == 0
    assert await harness.redis.exists("arq:retry:bad", "jobq:meta:bad", "arq:in-progress:bad", "arq:job:bad") == 0
    assert await harness.run_due() == 0  # nothing comes back


@pytest.mark.parametrize("meta", [b"x", None])
async def test_a_failure_with_a_corrupt_meta_record_is_dead_lettered_not_retried(
    harness: Harness, meta: bytes | None
) -> None:
    # First start: the claim does not read the meta record; the retry script finds it corrupt.
    bad = await harness.client.enqueue("flaky", {"failures": 9}, job_id="bad")
    if meta is None:
        await reply(harness.redis.hset("jobq:meta:bad", "failures", "zz"))
    else:
        await harness.redis.set("jobq:meta:bad", meta)
    await harness.run_due()
    result = await bad.wait(timeout_s=1)
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 1)
    entry = await store(harness).show("bad")
    assert "jobq:meta:bad" in entry.message
    assert await harness.redis.zcard(harness.settings.queue_name) == 0


async def test_a_corrupt_retry_counter_found_by_a_deferral_dead_letters_the_job(harness: Harness) -> None:
    # "limited" runs one at a time in this worker: the second is deferred, and its counter is corrupt by then.
    await harness.client.enqueue("limited", {"seconds": 0}, job_id="first")
    bad = await harness.client.enqueue("limited", {"seconds": 0}, job_id="second")
    claims = await harness.worker.leases.claim(harness.clock.ms(), 2, 100)
    assert [c.job_id for c in claims] == ["first", "second"]
    await harness.redis.set("arq:retry:second", "abc")
    outcomes = await asyncio.gather(*(harness.worker.executor.run(TryHandle(c)) for c in claims))
    assert outcomes == [Outcome.SUCCEEDED, Outcome.DEAD_LETTERED]
    result = await bad.wait(timeout_s=1)
    assert result.outcome is Outcome.DEAD_LETTERED
    assert "arq:retry:second" in (await store(harness).show("second")).message
