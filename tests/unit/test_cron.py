"""Schedules: timing maths, one enqueue per tick across workers and skewed clocks, misfires, overrides."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests import cron_tasks, rate_tasks
from tests.unit.harness import Clock, Harness
from worker import Schedule, SettingsError, TaskDefinitionError
from worker.engine.scheduler import CronScheduler, tick_job_id
from worker.protocol.keys import marker_key
from worker.protocol.options import JobOptions
from worker.protocol.serialization import EnvelopeCodec
from worker.taskdef.cron import Cron, Every, effective_schedules, parse_timing

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(seconds=st.floats(0.5, 86400), t=instants)
@example(seconds=0.5000000000000001, t=datetime(2000, 1, 1, tzinfo=UTC))  # float ticks once landed on t itself
def test_interval_ticks_bracket_any_instant(seconds: float, t: datetime) -> None:
    every = Every(seconds)
    before, after = every.latest_at_or_before(t), every.next_after(t)
    assert before <= t < after
    assert after - before == pytest.approx(timedelta(seconds=seconds), abs=timedelta(milliseconds=1))


@given(t=instants)
def test_cron_ticks_bracket_any_instant(t: datetime) -> None:
    cron = Cron("*/15 * * * *")
    before, after = cron.latest_at_or_before(t), cron.next_after(t)
    assert before <= t < after
    assert after.minute % 15 == 0
    assert after.second == 0
    assert after - before <= timedelta(minutes=15)


def test_cron_in_another_time_zone() -> None:
    paris = Cron("0 3 * * *", "Europe/Paris")
    assert paris.next_after(T0) == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 03:00 CET


@pytest.mark.parametrize(
    ("text", "expected"),
    [("every 30s", Every(30)), ("every 5m", Every(300)), ("EVERY 1h", Every(3600)), ("0 * * * *", Cron("0 * * * *"))],
)
def test_parse_timing(text: str, expected: object) -> None:
    assert parse_timing(text) == expected


def test_schedule_declarations_are_checked_at_import() -> None:
    with pytest.raises(TaskDefinitionError, match="exactly one of cron"):
        Schedule(cron_tasks.record_tick)
    with pytest.raises(TaskDefinitionError, match="bad cron expression"):
        Schedule(cron_tasks.record_tick, cron="61 * * * *")
    with pytest.raises(TaskDefinitionError, match="invalid payload"):
        Schedule(cron_tasks.record_tick, every_s=1, payload={"label": 3})
    with pytest.raises(TaskDefinitionError, match="unknown time zone"):
        Schedule(cron_tasks.record_tick, cron="0 * * * *", timezone="Mars/Olympus")


def test_settings_override_or_turn_off_schedules() -> None:
    declared = [cron_tasks.every_second, cron_tasks.quarter_hourly]
    active = effective_schedules(declared, {"every-second": "every 5s", "quarter-hourly": "off"})
    assert [(a.schedule.name, a.timing) for a in active] == [("every-second", Every(5))]
    with pytest.raises(SettingsError, match="unknown schedules \\['nope'\\]"):
        effective_schedules(declared, {"nope": "off"})
    with pytest.raises(SettingsError, match="JOBQ_CRON\\['every-second'\\]"):
        effective_schedules(declared, {"every-second": "sometimes"})


def scheduler(h: Harness, clock: Clock, *, misfire: str = "run_once", grace_s: float = 30) -> CronScheduler:
    schedule = Schedule(cron_tasks.record_tick, every_s=10, name="ten", misfire=misfire)  # type: ignore[arg-type]
    return CronScheduler(
        h.redis, EnvelopeCodec(), h.settings.queue_name, effective_schedules([schedule], {}),
        misfire_grace_s=grace_s, lookahead_s=1, job_expires_s=3600, clock=clock,
    )  # fmt: skip


async def queued(h: Harness) -> list[str]:
    return [m.decode() for m in await h.redis.zrange(h.settings.queue_name, 0, -1)]


async def test_each_tick_is_enqueued_once_by_many_workers_with_skewed_clocks(harness: Harness) -> None:
    base = T0.timestamp() + 5
    skews = [-2.0, 0.0, 1.5, 2.5]
    clocks = [Clock(base + s) for s in skews]
    workers = [scheduler(harness, c) for c in clocks]
    for _ in range(120):  # ten minutes of 5 s steps, each worker looking in turn
        for c, w in zip(clocks, workers, strict=True):
            c.advance(5)
            await w.enqueue_due()
    ids = await queued(harness)
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    assert len(ids) == len(set(ids))
    assert all(b - a == 10_000 for a, b in itertools.pairwise(ticks))  # no tick missing, none twice
    assert len(ticks) >= 59


async def test_restarted_worker_resumes_after_the_last_recorded_tick(harness: Harness) -> None:
    clock = Clock(T0.timestamp() + 1)
    first = scheduler(harness, clock)
    assert await first.enqueue_due() == 0  # the +10 s tick is not due yet (look-ahead 1 s)
    clock.advance(9.5)
    assert await first.enqueue_due() == 1
    restarted = scheduler(harness, clock)  # a fresh worker: no memory but the ledger
    assert await restarted.enqueue_due() == 0
    clock.advance(10)
    assert await restarted.enqueue_due() == 1
    expected = [tick_job_id("ten", T0 + timedelta(seconds=s)) for s in (10, 20)]
    assert await queued(harness) == expected


async def test_misfire_run_once_runs_the_latest_missed_tick(harness: Harness) -> None:
    clock = Clock(T0.timestamp() + 9.5)
    s = scheduler(harness, clock)
    await s.enqueue_due()  # +10 s
    clock.advance(605)  # every worker was down for ten minutes: now +614.5 s
    assert await s.enqueue_due() == 1
    latest = T0 + timedelta(seconds=610)
    assert tick_job_id("ten", latest) in await queued(harness)
    assert len(await queued(harness)) == 2


async def test_misfire_skip_waits_for_the_next_tick(harness: Harness) -> None:
    clock = Clock(T0.timestamp() + 9.5)
    s = scheduler(harness, clock, misfire="skip")
    await s.enqueue_due()
    clock.advance(605)  # now +614.5 s: +620 is the next tick
    assert await s.enqueue_due() == 0
    clock.advance(10)
    assert await s.enqueue_due() == 1
    assert len(await queued(harness)) == 2


async def test_a_late_tick_within_the_grace_still_runs(harness: Harness) -> None:
    clock = Clock(T0.timestamp() + 9.5)
    s = scheduler(harness, clock, grace_s=30)
    await s.enqueue_due()
    clock.advance(25)  # +34.5: ticks +20 and +30 are late but within the grace
    assert await s.enqueue_due() == 2
    assert len(await queued(harness)) == 3


async def test_an_enqueued_tick_arms_the_marker_for_its_time(harness: Harness) -> None:
    marker = marker_key(harness.settings.queue_name)
    clock = Clock(T0.timestamp() + 5)
    cron = scheduler(harness, clock)
    assert await cron.enqueue_due() == 0  # the next tick, at +10 s, is not due yet
    assert await harness.redis.exists(marker) == 0
    clock.advance(10)
    assert await cron.enqueue_due() == 1
    tick_ms = round((T0.timestamp() + 10) * 1000)
    assert await harness.redis.zrange(marker, 0, -1, withscores=True) == [(b"m", tick_ms)]


async def test_a_tick_of_a_keyed_rate_limited_task_carries_its_rate_key_for_the_claim(harness: Harness) -> None:
    schedule = Schedule(rate_tasks.once_a_second, every_s=10, name="rated", payload={"run": "c", "key": "tenant-7"})
    clock = Clock(T0.timestamp() + 9.5)
    cron = CronScheduler(
        harness.redis, EnvelopeCodec(), harness.settings.queue_name, effective_schedules([schedule], {}),
        misfire_grace_s=30, lookahead_s=1, job_expires_s=3600, clock=clock,
    )  # fmt: skip
    assert await cron.enqueue_due() == 1
    [job_id] = await queued(harness)
    body = EnvelopeCodec().loads(await harness.redis.get(f"arq:job:{job_id}"))
    assert JobOptions.pop_from(dict(body["k"])).rate_key == "tenant-7"
