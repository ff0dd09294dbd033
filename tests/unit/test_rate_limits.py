"""Fleet-wide rate limits: GCRA in Redis (lua/rate_acquire.lua), and jobs over the rate parked uncharged."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from arq.connections import ArqRedis
from pydantic import BaseModel

from tests.unit.harness import Harness
from worker import Client, JobContext, JobStatus, RateLimit, task
from worker.engine.limiter import DistributedLimiter, NoFreeSlot
from worker.errors import TaskDefinitionError
from worker.protocol.keys import rate_key
from worker.protocol.scripts import Scripts
from worker.taskdef.registry import TaskRegistry

GATES, MARKER = "jobq:gates:q", "jobq:marker:q"


async def server_ms(redis: ArqRedis) -> float:
    seconds, micros = await redis.time()
    return float(seconds * 1000 + micros / 1000)


async def acquire(redis: ArqRedis, per_s: float, burst: int, key: str = "k", now: int = 0) -> tuple[int, int]:
    """One call of rate_acquire for ``rate:r:<key>`` on queue ``q``: ``(admitted, wait_ms)``."""
    keys = [rate_key("r", key), GATES, f"jobq:waiting:q:rate:r:{key}"]
    args = [1000 / per_s, burst, f"rate:r:{key}", MARKER, now]
    admitted, wait_ms = await Scripts.of(redis)["rate_acquire"](keys, args)
    return int(admitted), int(wait_ms)


async def test_gcra_admits_the_burst_at_once_then_one_per_interval(fake_redis: ArqRedis) -> None:
    # 1 start a second, 3 at once: the burst is admitted, the next start is refused until one interval on.
    start = await server_ms(fake_redis)
    calls = [await acquire(fake_redis, 1, 3) for _ in range(3)]
    assert calls[:2] == [(1, 0), (1, 0)]
    assert calls[2][0] == 1
    assert 0 < calls[2][1] <= 1000  # the burst is used up: the next start is one interval after the first
    admitted, wait_ms = await acquire(fake_redis, 1, 3)
    elapsed_ms = await server_ms(fake_redis) - start
    assert admitted == 0
    # The retry time is the first start's time plus one interval: at most 1 s away, and no less than that
    # second minus the time the calls took (a loaded machine only makes it shorter).
    assert 1000 - elapsed_ms - 1 <= wait_ms <= 1000
    assert (await acquire(fake_redis, 1, 3))[0] == 0  # refused again: a refusal does not move the state


async def test_a_refused_start_changes_nothing_and_names_when_it_may_come(fake_redis: ArqRedis) -> None:
    assert await acquire(fake_redis, 2, 1) == (1, 500)
    state = await fake_redis.get(rate_key("r", "k"))
    admitted, wait_ms = await acquire(fake_redis, 2, 1)
    assert admitted == 0
    assert 0 < wait_ms <= 500
    assert await fake_redis.get(rate_key("r", "k")) == state  # a refusal costs the key nothing
    # The retry time is the state's theoretical arrival time (burst 1: no tolerance), on the server's clock.
    tat_ms = float(state or 0)
    assert math.ceil(tat_ms - await server_ms(fake_redis)) <= wait_ms


async def test_the_sustained_rate_holds_over_many_calls(fake_redis: ArqRedis) -> None:
    # 1000/s, burst 4: however fast the calls come, the admitted ones never exceed elapsed * rate + burst.
    start = await server_ms(fake_redis)
    admitted = sum([(await acquire(fake_redis, 1000, 4))[0] for _ in range(300)])
    elapsed_ms = await server_ms(fake_redis) - start
    assert 4 <= admitted <= elapsed_ms * 1 + 4 + 1


async def test_the_state_of_an_idle_key_expires(fake_redis: ArqRedis) -> None:
    assert (await acquire(fake_redis, 50, 1))[0] == 1
    ttl_ms = await fake_redis.pttl(rate_key("r", "k"))
    assert 0 < ttl_ms <= 20  # it lives until its theoretical arrival time, one interval (20 ms) on
    await acquire(fake_redis, 50, 1, key="other")
    assert await fake_redis.exists(rate_key("r", "other")) == 1  # keys are separate
    deadline = time.monotonic() + 5
    while await fake_redis.exists(rate_key("r", "k")):  # gone once idle (the server's clock)
        assert time.monotonic() < deadline, "the idle key's state did not expire"
        await asyncio.sleep(0.005)
    assert (await acquire(fake_redis, 50, 1))[0] == 1  # an idle key starts afresh


async def test_an_admission_arms_the_marker_for_the_next_start_only_when_jobs_wait(fake_redis: ArqRedis) -> None:
    await acquire(fake_redis, 1, 2, now=10_000)
    assert await fake_redis.exists(MARKER, GATES) == 0  # nobody waits: nothing to wake
    await fake_redis.zadd("jobq:waiting:q:rate:r:k", {"j1": 1})
    admitted, wait_ms = await acquire(fake_redis, 1, 2, now=10_000)
    assert admitted == 1
    assert 900 <= wait_ms <= 1000
    # The gate's re-check and the marker are on the caller's clock (the queue's), at the next start.
    assert await fake_redis.zscore(GATES, "rate:r:k") == 10_000 + wait_ms
    assert await fake_redis.zscore(MARKER, "m") == 10_000 + wait_ms


async def test_the_limiter_raises_no_free_slot_with_the_retry_time(fake_redis: ArqRedis) -> None:
    limiter = DistributedLimiter(fake_redis, lease_s=5, clock=lambda: 100.0)
    rate = RateLimit("api", per_s=1, key=lambda p: p)
    await limiter.admit(rate, "tenant-a", "q")
    await limiter.admit(rate, "tenant-b", "q")  # another key has a rate of its own
    with pytest.raises(NoFreeSlot, match="rate limit 'api' is used up for key 'tenant-a'") as raised:
        await limiter.admit(rate, "tenant-a", "q")
    assert raised.value.gate.name == "rate:api:tenant-a"
    assert raised.value.retry_after_ms is not None
    assert 0 < raised.value.retry_after_ms <= 1000
    assert await fake_redis.exists(MARKER) == 0  # the job's park arms it (after the park: the claim finds the gate)


async def test_a_start_due_within_the_hold_is_reserved_and_waited_for(fake_redis: ArqRedis) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = DistributedLimiter(
        fake_redis, lease_s=5, clock=lambda: 100.0, rate_hold_s=2.5, max_holding=9, sleep=sleep
    )
    rate = RateLimit("api", per_s=1, key=lambda p: p)
    await limiter.admit(rate, "a", "q")  # admitted at once
    await limiter.admit(rate, "a", "q")  # its turn is 1 s away: reserved, waited for here
    await limiter.admit(rate, "a", "q")  # 2 s away: reserved too
    assert len(slept) == 2
    assert 0.9 <= slept[0] <= 1.0
    assert 1.9 <= slept[1] <= 2.0
    with pytest.raises(NoFreeSlot) as raised:  # 3 s away: beyond the hold, so it parks (and reserves nothing)
        await limiter.admit(rate, "a", "q")
    assert raised.value.retry_after_ms is not None
    assert 2900 <= raised.value.retry_after_ms <= 3000
    with pytest.raises(NoFreeSlot) as again:
        await limiter.admit(rate, "a", "q")
    assert again.value.retry_after_ms == pytest.approx(raised.value.retry_after_ms, abs=50)  # nothing was counted


async def test_at_most_max_holding_reserved_starts_wait_in_one_worker(fake_redis: ArqRedis) -> None:
    release = asyncio.Event()
    sleeping = asyncio.Event()

    async def sleep(seconds: float) -> None:
        sleeping.set()
        await release.wait()

    limiter = DistributedLimiter(fake_redis, lease_s=5, clock=lambda: 100.0, rate_hold_s=5, max_holding=1, sleep=sleep)
    rate = RateLimit("api", per_s=1, key=lambda p: p)
    await limiter.admit(rate, "a", "q")
    held = asyncio.ensure_future(limiter.admit(rate, "a", "q"))  # reserved: waits in the worker
    await asyncio.wait_for(sleeping.wait(), 5)
    with pytest.raises(NoFreeSlot):  # one waits already: this one parks instead of holding another slot
        await limiter.admit(rate, "a", "q")
    release.set()
    await asyncio.wait_for(held, 5)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: RateLimit("", per_s=1), "name"),
        (lambda: RateLimit("a:b", per_s=1), "name"),
        (lambda: RateLimit("r", per_s=0), "per_s"),
        (lambda: RateLimit("r", per_s=-1), "per_s"),
        (lambda: RateLimit("r", per_s=float("inf")), "per_s"),
        (lambda: RateLimit("r", per_s="5"), "per_s"),  # type: ignore[arg-type]
        (lambda: RateLimit("r", per_s=1, burst=0), "burst"),
        (lambda: RateLimit("r", per_s=1, burst=1.5), "burst"),  # type: ignore[arg-type]
        (lambda: RateLimit("r", per_s=1, key="tenant"), "key"),  # type: ignore[arg-type]
    ],
)
def test_bad_rate_limit_fields_are_named(make: Callable[[], RateLimit], field: str) -> None:
    with pytest.raises(TaskDefinitionError, match=rf"\b{field}\b"):
        make()


class In(BaseModel):
    n: int


def test_a_task_takes_only_a_rate_limit_as_rate_limit() -> None:
    async def fn(ctx: JobContext, payload: In) -> None:
        return None

    with pytest.raises(TaskDefinitionError, match="rate_limit must be a RateLimit"):
        task(rate_limit=5)(fn)  # type: ignore[call-overload]
    defined = task(rate_limit=RateLimit("r", per_s=0.5))(fn)
    assert defined.rate_limit == RateLimit("r", per_s=0.5, key=defined.rate_limit.key)  # type: ignore[union-attr]


@pytest.fixture(params=["claim-checks", "worker-checks"])
def rated(request: pytest.FixtureRequest, make_harness: Callable[..., Harness]) -> Harness:
    """A harness on tests.rate_tasks with no reservations (every start over the rate parks). With
    ``claim-checks`` the producer knows the tasks, so each job carries its key and the claim checks the rate;
    with ``worker-checks`` the producer does not know the limits (another service's code, a stock arq producer),
    so the worker checks each job it claims."""
    h = make_harness(task_modules=["tests.rate_tasks"], rate_hold_s=0)
    if request.param == "worker-checks":
        unaware = TaskRegistry(dataclasses.replace(t, rate_limit=None) for t in h.registry)
        h = dataclasses.replace(h, client=Client(h.settings, registry=unaware, redis=h.redis, clock=h.clock))
    return h


def claim_checks(h: Harness) -> bool:
    """Whether the jobs of ``h``'s producer carry their rate key (the claim then checks the rate)."""
    return h.client.registry.get("once_a_second").rate_limit is not None


def counted(h: Harness, metric: str, **labels: str) -> float:
    """A counter's value in the worker's metrics (0 when it has no such series)."""
    for family in h.worker.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_a_job_over_its_rate_waits_parked_without_spending_a_try(rated: Harness) -> None:
    same_key = [await rated.client.enqueue("once_a_second", {"run": "u", "key": "a"}) for _ in range(2)]
    other_key = await rated.client.enqueue("once_a_second", {"run": "u", "key": "b"})
    # The claim parks the job over the rate in place; the worker claims it, and gives its start back.
    assert await rated.run_due() == (2 if claim_checks(rated) else 3)
    assert (await other_key.wait(timeout_s=1)).success  # another key is not held back
    statuses = [(await h.status()).status for h in same_key]
    assert sorted(s.value for s in statuses) == ["succeeded", "waiting"]  # one ran, one waits for its turn
    second = same_key[statuses.index(JobStatus.WAITING)]
    info = await second.status()
    assert (info.status, info.tries, info.interruptions) == (JobStatus.WAITING, 0, 0)
    assert await rated.redis.get(f"arq:retry:{second.job_id}") in (None, b"0")  # the start was given back
    assert counted(rated, "jobq_jobs_started_total", task="once_a_second") == 2  # real tries only
    assert counted(rated, "jobq_jobs_parked_total", task="once_a_second") == 1
    assert counted(rated, "jobq_rate_limited_total", task="once_a_second", limit="slow") == 1
    # Re-checked when the rate admits it (within the second), not at the slot re-check (JOBQ_SLOT_RETRY_S).
    recheck_ms = await rated.redis.zscore("jobq:gates:arq:queue", "rate:slow:a")
    assert recheck_ms is not None
    assert 0 < recheck_ms - rated.clock.ms() <= 1000
    assert await rated.run_due() == 0  # nothing re-claims it in a loop
    await rated.redis.delete(rate_key("slow", "a"))  # the server's second passes
    rated.clock.advance((recheck_ms - rated.clock.ms()) / 1000)
    assert await rated.run_due() == 1  # the gate's re-check put it back, and it ran
    result = await second.wait(timeout_s=1)
    assert (result.success, result.tries) == (True, 1)
    assert counted(rated, "jobq_jobs_started_total", task="once_a_second") == 3


async def test_a_job_over_its_rate_gives_its_concurrency_slot_back(rated: Harness) -> None:
    jobs = [await rated.client.enqueue("limited_and_rated", {"run": "u", "key": "a"}) for _ in range(2)]
    assert await rated.run_due() == (1 if claim_checks(rated) else 2)  # the claim checks before any slot is taken
    infos = sorted([(await j.status()).status for j in jobs], key=lambda s: s.value)
    assert infos == [JobStatus.SUCCEEDED, JobStatus.WAITING]
    assert await rated.redis.exists("jobq:limit:pair:a") == 0  # no slot held by the waiting job
    assert await rated.redis.zscore("jobq:gates:arq:queue", "rate:slow-pair:a") is not None


@pytest.mark.parametrize("hold_s", [0.0, 1.0])
async def test_the_claim_checks_a_known_key_itself_and_hands_over_the_turns_it_reserved(
    make_harness: Callable[..., Harness], hold_s: float
) -> None:
    h = make_harness(task_modules=["tests.rate_tasks"], rate_hold_s=hold_s)
    asked: list[object] = []

    async def spy(send: Any, keys: Any, args: Any) -> Any:
        asked.append(keys)
        return await send(keys, args)

    jobs = [await h.client.enqueue("rated_fifty", {"run": "hold"}) for _ in range(7)]  # 50/s, 5 at once
    with Scripts.of(h.redis).intercept("rate_acquire", spy):
        started = await h.run_due()
    assert asked == []  # the claim checked every start: the worker asked nothing more
    # The burst starts at once; with a hold the next turns (20 ms apart) are reserved and waited for here.
    assert started == (7 if hold_s else 5)
    waiting = [j for j in jobs if (await j.status()).status is JobStatus.WAITING]
    assert len(waiting) == 7 - started
    assert counted(h, "jobq_rate_limited_total", task="rated_fifty", limit="fifty") == 7 - started
    for job in jobs:
        if job not in waiting:
            assert (await job.wait(timeout_s=5)).tries == 1


async def test_a_start_the_claim_counted_under_another_key_than_the_workers_is_checked_again(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(task_modules=["tests.rate_tasks"], rate_hold_s=0)
    rate = h.registry.get("once_a_second").rate_limit
    assert rate is not None
    other_code = dataclasses.replace(rate, key=lambda p: "elsewhere")  # a producer running other code
    registry = TaskRegistry(
        dataclasses.replace(t, rate_limit=other_code) if t.name == "once_a_second" else t for t in h.registry
    )
    producer = Client(h.settings, registry=registry, redis=h.redis, clock=h.clock)
    asked: list[object] = []

    async def spy(send: Any, keys: Any, args: Any) -> Any:
        asked.append(keys[0])
        return await send(keys, args)

    job = await producer.enqueue("once_a_second", {"run": "k", "key": "a"})
    with Scripts.of(h.redis).intercept("rate_acquire", spy):
        assert await h.run_due() == 1
    assert asked == [rate_key("slow", "a")]  # the worker counted the start against its own key too
    assert (await job.wait(timeout_s=5)).success
    assert await h.redis.exists(rate_key("slow", "elsewhere"), rate_key("slow", "a")) == 2
