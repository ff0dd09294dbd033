"""The worker loop: survives Redis errors, drains on signals, beats its own health key."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.harness import wait_status
from tests.unit.harness import Harness
from worker import JobStatus
from worker.engine.health import WorkerState, read_health
from worker.engine.leases import Leases
from worker.engine.probes import probe_app
from worker.protocol.keys import worker_key


async def run_worker(h: Harness) -> asyncio.Task[None]:
    task = asyncio.create_task(h.worker.async_run())
    await asyncio.sleep(0.02)
    return task


async def test_loop_outlives_redis_errors(make_harness: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    h = make_harness(poll_delay_s=0.01)
    failures = {"left": 3}
    real_claim = Leases.claim_batch

    async def flaky_claim(self: Leases, *args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise RedisConnectionError("Connection reset by peer")
        return await real_claim(self, *args, **kwargs)

    monkeypatch.setattr(Leases, "claim_batch", flaky_claim)
    loop = await run_worker(h)
    handle = await h.client.enqueue("add", {"a": 1, "b": 2})
    assert (await handle.result(timeout_s=5)).total == 3
    assert failures["left"] == 0
    assert h.worker.state.connected
    h.worker.handle_sig(signal.SIGTERM)
    await asyncio.wait_for(loop, 2)


async def test_drain_finishes_short_jobs_and_returns_long_ones_uncharged(make_harness: Any) -> None:
    h = make_harness(poll_delay_s=0.01, shutdown_grace_s=0.3)
    short = await h.client.enqueue("progressing", {"seconds": 0.1}, job_id="short")
    long = await h.client.enqueue("progressing", {"seconds": 10}, job_id="long")
    loop = await run_worker(h)
    await wait_status(h.client, "long", JobStatus.IN_PROGRESS, 2.0, 0.01)
    h.worker.handle_sig(signal.SIGTERM)
    late = await h.client.enqueue("add", {"a": 1, "b": 1}, job_id="late")
    await asyncio.wait_for(loop, 3)
    assert (await short.wait(timeout_s=1)).success  # finished during the grace period
    info = await long.status()
    assert (info.status, info.tries, info.interruptions) == (JobStatus.QUEUED, 0, 1)
    assert (await late.status()).status is JobStatus.QUEUED  # nothing new was claimed


async def test_second_signal_returns_jobs_at_once(make_harness: Any) -> None:
    h = make_harness(poll_delay_s=0.01, shutdown_grace_s=30)
    long = await h.client.enqueue("progressing", {"seconds": 10})
    loop = await run_worker(h)
    await wait_status(h.client, long.job_id, JobStatus.IN_PROGRESS, 2.0, 0.01)
    started = time.monotonic()
    h.worker.handle_sig(signal.SIGTERM)
    h.worker.handle_sig(signal.SIGINT)
    await asyncio.wait_for(loop, 3)
    assert time.monotonic() - started < 2
    assert (await long.status()).status is JobStatus.QUEUED


async def test_each_worker_beats_its_own_health_key(make_harness: Any) -> None:
    h = make_harness(poll_delay_s=0.01, health_interval_s=0.05)
    loop = await run_worker(h)
    worker_id = h.worker.state.worker_id
    reports = await read_health(h.redis, worker_id=worker_id, host=None, max_age_s=1)
    assert [(r.worker_id, r.healthy) for r in reports] == [(worker_id, True)]
    host = worker_id.rsplit(":", 1)[0]
    assert [r.worker_id for r in await read_health(h.redis, worker_id=None, host=host, max_age_s=1)] == [worker_id]
    h.worker.handle_sig(signal.SIGTERM)
    await asyncio.wait_for(loop, 2)
    await h.worker.close()
    assert await h.redis.exists(worker_key(worker_id)) == 0  # a clean stop removes only its own key


async def test_a_stale_heartbeat_is_unhealthy(harness: Harness) -> None:
    await harness.worker.heartbeat.beat()
    reports = await read_health(harness.redis, worker_id=harness.worker.state.worker_id, host=None, max_age_s=0)
    assert [r.healthy for r in reports] == [False]
    assert await read_health(harness.redis, worker_id="nobody:1", host=None, max_age_s=10) == [
        type(reports[0])("nobody:1", False, None, {})
    ]


async def test_probes_follow_the_worker_state() -> None:
    state = WorkerState(worker_id="h:1", queue="q")
    async with TestClient(TestServer(probe_app(state, redis_stale_after_s=1))) as client:
        assert (await client.get("/livez")).status == 200
        assert (await client.get("/readyz")).status == 503  # not connected yet
        state.redis_ok()
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["worker_id"] == "h:1"
        state.redis_failed(RedisConnectionError("gone"))
        body = await (await client.get("/readyz")).json()
        assert body["connected"] is False
        assert "gone" in body["last_error"]
        state.redis_ok()
        state.draining = True
        assert (await client.get("/readyz")).status == 503
        state.last_loop -= 60
        assert (await client.get("/livez")).status == 503
