"""`jobq check` for a host under `jobq worker --processes N`: every slot of the supervisor's record counts."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis

from worker.engine.health import HealthReport, Heartbeat, WorkerState, read_health
from worker.process.supervisor import SLOT_ENV, Slot, supervised_slot
from worker.protocol.keys import supervisor_key, worker_key

HOST = "host-a"
SUPERVISOR = f"{HOST}:100"


def worker(pid: int, index: int, count: int = 2) -> WorkerState:
    state = WorkerState(worker_id=f"{HOST}:{pid}", queue="q", slot=Slot(SUPERVISOR, index, count))
    state.connected = True
    return state


async def beat(redis: ArqRedis, state: WorkerState) -> None:
    await Heartbeat(redis, state, interval_s=5).beat()


async def host_reports(redis: ArqRedis) -> dict[str, HealthReport]:
    reports = await read_health(redis, worker_id=None, host=HOST, max_age_s=15, queue="q")
    return {r.worker_id: r for r in reports}


async def test_a_worker_whose_heartbeat_ran_out_fails_the_host_check_by_name(fake_redis: ArqRedis) -> None:
    first, second = worker(201, 0), worker(202, 1)
    await beat(fake_redis, first)
    await beat(fake_redis, second)
    assert all(r.healthy for r in (await host_reports(fake_redis)).values())
    await fake_redis.delete(worker_key(second.worker_id))  # its key ran out: cut off from Redis
    await beat(fake_redis, first)  # the sibling keeps beating (and the record alive)
    reports = await host_reports(fake_redis)
    assert reports[first.worker_id].healthy
    assert not reports[second.worker_id].healthy
    assert "no heartbeat" in reports[second.worker_id].describe()
    assert "worker 2 of 2 of supervisor host-a:100" in reports[second.worker_id].describe()


async def test_a_slot_that_never_beat_is_missing(fake_redis: ArqRedis) -> None:
    await beat(fake_redis, worker(201, 0, count=3))
    reports = await host_reports(fake_redis)
    assert [r.healthy for r in reports.values()] == [True, False, False]
    assert all("never beat" in r.describe() for r in list(reports.values())[1:])


async def test_the_key_of_a_replaced_worker_no_longer_counts(fake_redis: ArqRedis) -> None:
    killed = worker(202, 1)
    await beat(fake_redis, worker(201, 0))
    await beat(fake_redis, killed)
    killed.connected = False  # its last beat said it had lost Redis; then it was killed, its key still there
    await beat(fake_redis, killed)
    replacement = worker(203, 1)
    await beat(fake_redis, replacement)
    reports = await host_reports(fake_redis)
    assert sorted(reports) == [f"{HOST}:201", f"{HOST}:203"]
    assert all(r.healthy for r in reports.values())


async def test_unsupervised_workers_are_read_as_before(fake_redis: ArqRedis) -> None:
    alone = WorkerState(worker_id=f"{HOST}:300", queue="q")
    alone.connected = True
    await beat(fake_redis, alone)
    assert [r.healthy for r in (await host_reports(fake_redis)).values()] == [True]
    assert not await fake_redis.exists(supervisor_key(SUPERVISOR))


def test_a_worker_learns_its_slot_from_its_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SLOT_ENV, raising=False)
    assert supervised_slot() is None
    monkeypatch.setenv(SLOT_ENV, "1 4 host-a:100")
    assert supervised_slot() == Slot("host-a:100", 1, 4)
    monkeypatch.setenv(SLOT_ENV, "garbage")
    assert supervised_slot() is None
