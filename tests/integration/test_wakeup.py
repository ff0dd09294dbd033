"""Worker processes wake on the queue's marker, one per job, with and without access to it."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from tests.harness import sync_reply
from tests.integration.harness import StartWorker
from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis
from worker.protocol.keys import marker_key
from worker.settings import JobqSettings

SLOW_POLL_S = "30"  # the fallback poll never picks a job up within these tests


def blocked_clients(r: redis.Redis) -> int:
    """How many connections are blocked in BZPOPMIN right now (CLIENT LIST's cmd and flags)."""
    clients = sync_reply(r.client_list())
    return sum(c.get("cmd") == "bzpopmin" and "b" in c.get("flags", "") for c in clients)


def wait_blocked(settings: JobqSettings, count: int = 1, timeout_s: float = 60) -> None:
    """Until ``count`` workers block on the queue's marker (a condition, not a guess at start-up speed)."""
    r = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout_s
    try:
        while blocked_clients(r) < count:
            assert time.monotonic() < deadline, f"fewer than {count} workers blocked within {timeout_s}s"
            time.sleep(0.02)
    finally:
        r.close()


def acl_settings(settings: JobqSettings, user: str) -> JobqSettings:
    return settings.model_copy(update={"redis_url": settings.redis_url.replace("redis://", f"redis://{user}:pw@")})


#: Every key family jobq uses but the marker's (jobq:marker:*): a user of an ACL written before it existed.
WITHOUT_MARKER = [
    "~arq:*", "~test:*", "~probe:*", "~jobq:meta:*", "~jobq:abort:*", "~jobq:done:*", "~jobq:enqueued:*",
    "~jobq:dlq:*", "~jobq:worker:*", "~jobq:workers", "~jobq:supervisor:*", "~jobq:limit:*", "~jobq:cron:*",
    "~jobq:paused:*", "~jobq:gates:*", "~jobq:waiting:*", "~jobq:dedup:*", "~jobq:fair:*", "~jobq:rate:*",
]  # fmt: skip


@pytest.fixture
def acl_users(redis_server: EmbeddedRedis) -> Iterator[None]:
    """Least-privilege users: one with everything, one without BZPOPMIN, one without the marker's keys."""
    admin = redis.Redis.from_url(redis_server.url)
    keys = ["~arq:*", "~jobq:*", "~test:*", "~probe:*", "+@all", "-@dangerous"]
    admin.execute_command("ACL", "SETUSER", "waker", "on", ">pw", *keys)
    admin.execute_command("ACL", "SETUSER", "noblock", "on", ">pw", *keys, "-bzpopmin")
    admin.execute_command("ACL", "SETUSER", "nomarker", "on", ">pw", *WITHOUT_MARKER, "+@all", "-@dangerous")
    yield
    admin.execute_command("ACL", "DELUSER", "waker", "noblock", "nomarker")
    admin.close()


async def test_an_idle_worker_process_runs_a_new_job_without_waiting_for_the_poll(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    start_worker(JOBQ_POLL_DELAY_S=SLOW_POLL_S)
    wait_blocked(settings)  # idle: blocked on the marker
    async with Client(settings) as client:
        handle = await client.enqueue("add", {"a": 2, "b": 2})
        assert (await handle.result(timeout_s=10)).total == 4
        deferred = await client.enqueue("add", {"a": 1, "b": 1}, defer_by=0.5)  # promoted by the marker's time
        assert (await deferred.result(timeout_s=10)).total == 2


async def test_a_least_privilege_user_wakes_workers(
    settings: JobqSettings, acl_users: None, start_worker: StartWorker
) -> None:
    start_worker(JOBQ_POLL_DELAY_S=SLOW_POLL_S, JOBQ_REDIS_USERNAME="waker", JOBQ_REDIS_PASSWORD="pw")
    wait_blocked(settings)
    async with Client(acl_settings(settings, "waker")) as client:
        handle = await client.enqueue("add", {"a": 1, "b": 2})
        assert (await handle.result(timeout_s=10)).total == 3


@pytest.mark.parametrize("user", ["noblock", "nomarker"])
async def test_without_the_marker_jobs_still_enqueue_and_run_by_polling(
    settings: JobqSettings, acl_users: None, start_worker: StartWorker, user: str
) -> None:
    worker = start_worker(JOBQ_POLL_DELAY_S="0.05", JOBQ_REDIS_USERNAME=user, JOBQ_REDIS_PASSWORD="pw")
    async with Client(acl_settings(settings, user)) as client:
        handle = await client.enqueue("add", {"a": 3, "b": 2})  # its marker is refused, the job is written
        assert handle.created
        assert (await handle.result(timeout_s=10)).total == 5
        retried = await client.enqueue("flaky", {"failures": 1})
        assert (await retried.wait(timeout_s=20)).success  # a retry arms no marker either: the poll finds it
    deadline = time.monotonic() + 30
    while "no blocking wait" not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.02)


def command_calls(r: redis.Redis) -> Counter[str]:
    stats = sync_reply(r.info("commandstats"))
    return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()})


async def test_sixteen_idle_workers_run_500_trickled_jobs_exactly_once_at_a_cost_per_job_of_one_worker(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    # The default fallback poll: what an idle fleet costs is part of the figure.
    workers = [start_worker(JOBQ_POLL_DELAY_S="5", ready=False) for _ in range(16)]
    for w in workers:
        w.wait_ready(settings.redis_url, settings.queue_name)
    wait_blocked(settings, 16, timeout_s=120)
    r = redis.Redis.from_url(settings.redis_url)
    run = "trickle"
    async with Client(settings) as client:
        before = command_calls(r)
        handles = []
        for _ in range(500):
            handles.append(await client.enqueue("tracked", {"run": run, "seconds": 0}))
            await asyncio.sleep(0.01)
        for handle in handles:
            assert (await handle.result(timeout_s=60)) is not None
        delta = command_calls(r) - before
    starts = Counter(e.split(b"|")[0] for e in sync_reply(r.lrange(f"probe:{run}:starts", 0, -1)))
    assert sorted(starts) == sorted(h.job_id.encode() for h in handles)
    assert set(starts.values()) == {1}, "a job ran twice"
    # The task's own RPUSH and EXPIRE, and the result waits (EXISTS, GET), are not the queue's cost.
    for own in ("rpush", "expire", "exists", "get", "info"):
        delta.pop(own, None)
    per_job = sum(delta.values()) / 500
    # 16 commands per job with one worker (enqueue 5, wake and claim 6, finish 5; see the README's
    # Performance section), plus the idle fleet's beats and polls: had every idle worker raced for each job
    # (the pub/sub wake-up), this was 60 and more. Each claim also reads the queue's gate index (ZRANGE: jobs
    # waiting for a slot) and its pause (EXISTS, not counted here): about one command per job more.
    assert per_job < 21, (per_job, delta.most_common(12))
    assert delta["evalsha"] / 500 < 3.5, delta
    r.close()


async def test_a_worker_killed_while_blocked_loses_nothing(settings: JobqSettings, start_worker: StartWorker) -> None:
    doomed = start_worker(JOBQ_POLL_DELAY_S="1")
    wait_blocked(settings)
    doomed.signal(signal.SIGKILL)
    assert doomed.wait(timeout=30) == -signal.SIGKILL
    r = redis.Redis.from_url(settings.redis_url)
    async with Client(settings) as client:
        # Enqueued while nobody blocks (the dead connection may still be open): each arms the marker.
        handles = [await client.enqueue("add", {"a": i, "b": 0}) for i in range(5)]
        handles.append(await client.enqueue("add", {"a": 9, "b": 0}, defer_by=0.3))
        start_worker(JOBQ_POLL_DELAY_S="1")
        assert [(await h.result(timeout_s=30)).total for h in handles] == [0, 1, 2, 3, 4, 9]
    assert r.zcard(settings.queue_name) == 0
    r.close()


async def test_a_worker_killed_while_waiting_for_a_deferred_job_loses_it_not(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    promoter = start_worker(JOBQ_POLL_DELAY_S="1")
    wait_blocked(settings)
    r = redis.Redis.from_url(settings.redis_url)
    async with Client(settings) as client:
        handle = await client.enqueue("add", {"a": 4, "b": 4}, defer_by=2)
        deadline = time.monotonic() + 30
        while not r.exists(marker_key(settings.queue_name) + ":timer"):  # popped: the worker waits for its time
            assert time.monotonic() < deadline, promoter.log()
            await asyncio.sleep(0.02)
        promoter.signal(signal.SIGKILL)
        assert promoter.wait(timeout=30) == -signal.SIGKILL
        start_worker(JOBQ_POLL_DELAY_S="1")  # no marker left for it: its fallback poll finds the job when due
        assert (await handle.result(timeout_s=30)).total == 8
    r.close()
