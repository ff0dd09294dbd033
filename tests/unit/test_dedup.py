"""Deduplication modes (UniqueFor, Throttle, Debounce): drop, replace, create after the window or after the holder
finished; the re-send safety of their script; bad declarations and options (tasks in tests/dedup_tasks.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from tests import dedup_tasks
from tests.unit.harness import Harness
from worker import Debounce, DedupOutcome, JobContext, JobRequest, JobStatus, Throttle, UniqueFor, task
from worker.client.producer import Client
from worker.errors import InvalidJobOptions, TaskDefinitionError
from worker.observability.metrics import Metrics
from worker.protocol.keys import dedup_lock_key
from worker.protocol.scripts import ScriptCall, Scripts
from worker.protocol.waiting import WAITING_BASE


@pytest.fixture
def h(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(task_modules=["tests.dedup_tasks"])


async def jobs(h: Harness) -> list[bytes]:
    return sorted(k for k in await h.redis.keys("arq:job:*"))


async def note_of(h: Harness, job_id: str) -> str:
    envelope = orjson.loads(await h.redis.get(f"arq:job:{job_id}"))
    return str(envelope["d"]["a"][0]["note"])


async def expire_lock(h: Harness, task_name: str, key: str) -> None:
    """Stand in for the lock's expiry (Redis's clock is not the injected one): its PX expiry is checked first."""
    assert await h.redis.pttl(dedup_lock_key(task_name, key)) > 0
    assert await h.redis.delete(dedup_lock_key(task_name, key)) == 1


# UniqueFor


async def test_unique_for_drops_a_duplicate_while_the_holder_is_pending(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1", "note": "first"})
    assert (first.created, first.deduplicated) == (True, None)
    before = await jobs(h)
    again = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1", "note": "second"})
    assert (again.job_id, again.created, again.deduplicated) == (first.job_id, False, DedupOutcome.DROPPED)
    assert await jobs(h) == before  # nothing written
    assert await note_of(h, first.job_id) == "first"
    assert 599_000 < await h.redis.pttl(dedup_lock_key("rebuild", "u1")) <= 600_000  # the window, from the enqueue
    other = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u2"})
    assert other.created
    assert other.job_id != first.job_id


async def test_unique_for_drops_while_the_holder_runs_or_retries(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"})
    await h.redis.set(f"arq:in-progress:{first.job_id}", "lease")
    running = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"})
    assert (running.job_id, running.deduplicated) == (first.job_id, DedupOutcome.DROPPED)
    await h.redis.delete(f"arq:in-progress:{first.job_id}")
    await h.redis.set(f"arq:retry:{first.job_id}", "1")  # waiting for its next try
    retrying = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"})
    assert retrying.deduplicated is DedupOutcome.DROPPED


async def test_unique_for_creates_once_the_holder_finished(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1", "note": "first"})
    assert await h.run_due() == 1
    assert (await first.status()).status is JobStatus.SUCCEEDED
    after = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1", "note": "after"})
    assert after.created
    assert after.job_id != first.job_id
    assert await h.redis.get(dedup_lock_key("rebuild", "u1")) == after.job_id.encode()  # the stale lock taken over


async def test_unique_for_creates_after_the_window_even_if_the_holder_waits(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"})
    await expire_lock(h, "rebuild", "u1")
    after = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"})
    assert after.created
    assert after.job_id != first.job_id
    assert len(await jobs(h)) == 2


# Throttle


async def test_throttle_drops_within_the_window_even_after_the_holder_finished(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.notify, {"user": "u1", "note": "first"})
    dropped = await h.client.enqueue(dedup_tasks.notify, {"user": "u1"})
    assert (dropped.job_id, dropped.deduplicated) == (first.job_id, DedupOutcome.DROPPED)
    assert await h.run_due() == 1
    finished = await h.client.enqueue(dedup_tasks.notify, {"user": "u1"})
    assert (finished.job_id, finished.created, finished.deduplicated) == (first.job_id, False, DedupOutcome.DROPPED)
    assert await finished.result(timeout_s=1) == "first"  # the handle follows the job that holds the window


async def test_throttle_creates_after_the_window_even_while_the_holder_runs(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.notify, {"user": "u1"})
    await h.redis.set(f"arq:in-progress:{first.job_id}", "lease")
    assert 59_000 < await h.redis.pttl(dedup_lock_key("notify", "u1")) <= 60_000
    await expire_lock(h, "notify", "u1")
    after = await h.client.enqueue(dedup_tasks.notify, {"user": "u1"})
    assert after.created
    assert after.job_id != first.job_id


# Debounce


async def test_debounce_defers_the_first_job_by_the_window(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1"})
    assert first.created
    assert await h.redis.zscore(h.settings.queue_name, first.job_id) == h.clock.ms() + 5000
    assert (await first.status()).status is JobStatus.DEFERRED
    assert await h.run_due() == 0


async def test_debounce_replaces_the_pending_jobs_payload_and_pushes_its_start(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "first"})
    h.clock.advance(3)
    second = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "second"})
    assert (second.job_id, second.created, second.deduplicated) == (first.job_id, False, DedupOutcome.REPLACED)
    assert await jobs(h) == [f"arq:job:{first.job_id}".encode()]
    assert await note_of(h, first.job_id) == "second"
    assert await h.redis.zscore(h.settings.queue_name, first.job_id) == h.clock.ms() + 5000  # 5 s after the last
    h.clock.advance(3)  # 6 s after the first enqueue: not due, the start was pushed
    assert await h.run_due() == 0
    h.clock.advance(2)
    assert await h.run_due() == 1
    assert await second.result(timeout_s=1) == "second"  # one run, with the last payload


async def test_debounce_writes_a_fresh_job_while_the_holder_runs(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "first"})
    await h.redis.set(f"arq:in-progress:{first.job_id}", "lease")  # a worker holds its lease
    fresh = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "fresh"})
    assert (fresh.created, fresh.deduplicated) == (True, None)
    assert fresh.job_id != first.job_id
    assert await note_of(h, first.job_id) == "first"  # the running job is left as it is
    assert await h.redis.zscore(h.settings.queue_name, fresh.job_id) == h.clock.ms() + 5000
    merged = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "merged"})
    assert (merged.job_id, merged.deduplicated) == (fresh.job_id, DedupOutcome.REPLACED)  # the key's pending job
    assert await note_of(h, fresh.job_id) == "merged"


async def test_debounce_writes_a_fresh_job_while_the_holder_waits_for_a_slot(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1"})
    await h.redis.zadd(h.settings.queue_name, {first.job_id: WAITING_BASE + h.clock.ms()}, xx=True)  # parked
    fresh = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1"})
    assert fresh.created
    assert fresh.job_id != first.job_id


async def test_debounce_writes_a_fresh_job_after_the_holder_finished(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "first"})
    h.clock.advance(6)
    assert await h.run_due() == 1
    fresh = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "fresh"})
    assert fresh.created
    assert fresh.job_id != first.job_id
    assert await first.result(timeout_s=1) == "first"


async def test_debounce_keeps_a_later_defer(h: Harness) -> None:
    later = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1"}, defer_by=60)
    assert await h.redis.zscore(h.settings.queue_name, later.job_id) == h.clock.ms() + 60_000


# Re-sent calls, ids given by the caller, overrides, batches


async def test_a_re_sent_script_call_answers_the_same_and_writes_once(h: Harness) -> None:
    replies: list[Any] = []

    async def send_twice(send: ScriptCall, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        replies.append(await send(keys, args))  # the reply is lost with the connection: redis-py sends it again
        replies.append(await send(keys, args))
        return replies[-1]

    with Scripts.of(h.redis).intercept("enqueue_dedup", send_twice):
        handle = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"})
    assert (handle.created, handle.deduplicated) == (True, None)  # not "dropped" by its own first send
    assert replies[0] == replies[1]
    assert await jobs(h) == [f"arq:job:{handle.job_id}".encode()]
    assert await h.redis.zcard(h.settings.queue_name) == 1


async def test_a_re_sent_replacement_answers_the_same(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "first"})
    replies: list[Any] = []

    async def send_twice(send: ScriptCall, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        replies.append(await send(keys, args))
        replies.append(await send(keys, args))
        return replies[-1]

    with Scripts.of(h.redis).intercept("enqueue_dedup", send_twice):
        second = await h.client.enqueue(dedup_tasks.reindex, {"user": "u1", "note": "second"})
    assert (second.job_id, second.deduplicated) == (first.job_id, DedupOutcome.REPLACED)
    assert [r[0] for r in replies] == [b"rebind", b"rebind", b"replaced", b"replaced"]
    assert await note_of(h, first.job_id) == "second"


async def test_a_given_job_id_is_used_for_a_new_job_and_the_dedup_check_comes_first(h: Harness) -> None:
    mine = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"}, job_id="mine")
    assert (mine.job_id, mine.created) == ("mine", True)
    dropped = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"}, job_id="yours")
    assert (dropped.job_id, dropped.deduplicated) == ("mine", DedupOutcome.DROPPED)
    assert not await h.redis.exists("arq:job:yours")
    taken = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u2"}, job_id="mine")  # that id is a job already
    assert (taken.job_id, taken.created, taken.deduplicated) == ("mine", False, None)
    assert not await h.redis.exists(dedup_lock_key("rebuild", "u2"))  # no lock taken by a job not written


async def test_dedup_key_overrides_the_computed_key(h: Harness) -> None:
    first = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u1"}, dedup_key="tenant-7")
    other_user = await h.client.enqueue(dedup_tasks.rebuild, {"user": "u2"}, dedup_key="tenant-7")
    assert (other_user.job_id, other_user.deduplicated) == (first.job_id, DedupOutcome.DROPPED)
    assert await h.redis.get(dedup_lock_key("rebuild", "tenant-7")) == first.job_id.encode()
    assert not await h.redis.exists(dedup_lock_key("rebuild", "u1"))
    by_request = await h.client.enqueue_many([JobRequest(dedup_tasks.rebuild, {"user": "u3"}, dedup_key="tenant-7")])
    assert by_request[0].deduplicated is DedupOutcome.DROPPED


async def test_a_batch_writes_dedup_jobs_one_by_one_and_keeps_the_order(h: Harness) -> None:
    handles = await h.client.enqueue_many(
        [
            JobRequest(dedup_tasks.plain, {"user": "u1"}),
            JobRequest(dedup_tasks.rebuild, {"user": "u1"}),
            JobRequest(dedup_tasks.plain, {"user": "u1"}),
            JobRequest(dedup_tasks.rebuild, {"user": "u1"}),
        ]
    )
    assert [(h.created, h.deduplicated) for h in handles] == [
        (True, None),
        (True, None),
        (True, None),
        (False, DedupOutcome.DROPPED),
    ]
    assert handles[3].job_id == handles[1].job_id
    assert len(await jobs(h)) == 3


async def test_dropped_and_replaced_enqueues_are_counted(h: Harness) -> None:
    metrics = Metrics()
    client = Client(h.settings, registry=h.registry, redis=h.redis, clock=h.clock, metrics=metrics)
    for _ in range(3):
        await client.enqueue(dedup_tasks.rebuild, {"user": "u1"})
    for _ in range(2):
        await client.enqueue(dedup_tasks.reindex, {"user": "u1"})
    text = metrics.render().decode()
    assert 'jobq_jobs_deduplicated_total{mode="unique_for",outcome="dropped",task="rebuild"} 2.0' in text
    assert 'jobq_jobs_deduplicated_total{mode="debounce",outcome="replaced",task="reindex"} 1.0' in text
    assert f'jobq_jobs_enqueued_total{{queue="{h.settings.queue_name}",task="rebuild"}} 1.0' in text


# Bad declarations and options


class In(BaseModel):
    user: str


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: UniqueFor(0), "window_s"),
        (lambda: Throttle(float("nan")), "window_s"),
        (lambda: Debounce(True), "window_s"),
        (lambda: Debounce(5, key="user"), "key"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_mode_is_a_task_definition_error_naming_the_field(make: Callable[[], object], named: str) -> None:
    with pytest.raises(TaskDefinitionError, match=r"window_s|key") as raised:
        make()
    assert named in str(raised.value)
    assert "e.g." in str(raised.value)  # says what to write instead


def test_dedup_must_be_one_of_the_modes() -> None:
    async def fn(ctx: JobContext, payload: In) -> None: ...

    with pytest.raises(TaskDefinitionError, match="dedup must be UniqueFor"):
        task(dedup=600)(fn)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("task_name", "payload", "options", "field"),
    [
        ("plain", {"user": "u1"}, {"dedup_key": "k"}, "dedup_key"),  # a task without a mode
        ("rebuild", {"user": "u1"}, {"dedup_key": ""}, "dedup_key"),
        ("rebuild", {"user": "u1"}, {"dedup_key": "x" * 257}, "dedup_key"),
        ("rebuild", {"user": "u1"}, {"dedup_key": "line\nbreak"}, "dedup_key"),
        ("rebuild", {"user": "u1"}, {"dedup_key": 3.5}, "dedup_key"),
        ("rebuild", {"user": ""}, {}, "dedup"),  # the key function gave an empty key
    ],
)
async def test_bad_dedup_options_are_refused_before_anything_is_written(
    h: Harness, task_name: str, payload: dict[str, Any], options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidJobOptions) as raised:
        await h.client.enqueue(task_name, payload, **options)
    assert raised.value.field == field
    with pytest.raises(InvalidJobOptions, match=r"batch item 1"):
        await h.client.enqueue_many([JobRequest("plain", {"user": "u0"}), JobRequest(task_name, payload, **options)])
    assert await h.redis.keys("*") == []


async def test_a_failing_key_function_names_the_task(h: Harness) -> None:
    async def fn(ctx: JobContext, payload: In) -> None: ...

    broken = task(name="broken", dedup=UniqueFor(5, key=lambda p: p.missing))(fn)
    with pytest.raises(InvalidJobOptions, match="dedup key function of task 'broken' raised AttributeError") as raised:
        await h.client.enqueue(broken, {"user": "u1"})
    assert raised.value.field == "dedup"
    assert await h.redis.keys("*") == []
