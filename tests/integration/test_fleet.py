"""Fleet behaviour with real worker processes: SIGKILL recovery within the lease, drain on SIGTERM,
Redis restarts, killed connections and pauses, and exactly-once cron ticks."""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
import signal
import socket
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.harness import reply, sync_reply
from tests.integration.harness import StartWorker, WorkerProcess
from tests.integration.servers import ServerProcess, start_aof_server
from worker import JobRequest
from worker.client.producer import Client
from worker.process.embedded import free_port
from worker.settings import JobqSettings

HOST = socket.gethostname()
SUCCEEDED_LINE = re.compile(r"job (\S+) tracked try \d+/\d+ succeeded")


async def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await predicate():  # type: ignore[misc]
                return
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass  # Redis may be restarting: keep asking
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def running_on(client: Client, worker: WorkerProcess) -> int:
    """How many leases the worker process holds right now."""
    prefix = f"{HOST}:{worker.pid}:".encode()
    count = 0
    async for key in client.redis.scan_iter(match="arq:in-progress:*", count=1000):
        value = await client.redis.get(key)
        count += bool(value and value.startswith(prefix))
    return count


def starts(raw: list[bytes]) -> dict[str, list[tuple[float, str]]]:
    by_job: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for entry in raw:
        job_id, ts, worker = entry.decode().split("|")
        by_job[job_id].append((float(ts), worker))
    return by_job


async def test_sigkilled_workers_jobs_rerun_within_the_lease_and_finish_once(
    client: Client, start_worker: StartWorker
) -> None:
    ttl = 1.5
    env = {"JOBQ_LEASE_TTL_S": str(ttl), "JOBQ_MAX_JOBS": "8"}
    workers = [start_worker(**env) for _ in range(3)]
    run = uuid.uuid4().hex[:8]
    handles = await client.enqueue_many([JobRequest("tracked", {"run": run, "seconds": 0.15}) for _ in range(500)])
    killed: dict[str, float] = {}
    for victim in workers[:2]:  # two kills, each mid-run, each followed by a replacement worker
        await wait_until(functools.partial(_busy, client, victim), 10, "the victim to hold running jobs")
        victim.signal(signal.SIGKILL)
        killed[f"{HOST}:{victim.pid}"] = time.time()
        workers.append(start_worker(**env))
        await asyncio.sleep(0.5)
    results = [await h.wait(timeout_s=60) for h in handles]
    assert all(r.success for r in results)
    by_job = starts(await reply(client.redis.lrange(f"probe:{run}:starts", 0, -1)))
    delays = []
    for runs in by_job.values():
        for (ts, worker), (next_ts, _) in itertools.pairwise(runs):
            if worker in killed:
                delays.append(next_ts - max(ts, killed[worker]))
    assert delays, "no job was caught mid-run by a kill"
    assert max(delays) <= ttl + 2.0, delays
    logs = "".join(w.log() for w in workers)
    recorded = Counter(SUCCEEDED_LINE.findall(logs))
    assert set(recorded.values()) == {1}  # no outcome recorded twice
    # A killed worker can record an outcome in Redis and die before it writes the log line (its replies
    # were still in the socket buffer): at most its 8 slots per kill go unlogged; their results are above.
    unlogged = {h.job_id for h in handles} - set(recorded)
    assert len(unlogged) <= 2 * 8, len(unlogged)
    assert set(recorded) <= {h.job_id for h in handles}
    rerun = [r for r in results if r.interruptions]
    assert rerun
    assert all(r.tries == 1 for r in rerun)


async def _busy(client: Client, worker: WorkerProcess) -> bool:
    return await running_on(client, worker) > 0


async def test_sigterm_drain_finishes_short_jobs_and_hands_long_ones_over(
    client: Client, start_worker: StartWorker
) -> None:
    # Every step waits on a condition (starts recorded in Redis, log lines, gates the test opens), so a slow
    # start-up of either worker on a loaded machine changes nothing: no job can end before its gate opens.
    grace_s = 4
    first = start_worker(JOBQ_SHUTDOWN_GRACE_S=str(grace_s))
    run = uuid.uuid4().hex[:8]
    short = [await client.enqueue("tracked", {"run": run, "seconds": 0, "hold": "short"}) for _ in range(3)]
    long = [await client.enqueue("tracked", {"run": run, "seconds": 0, "hold": "long"}) for _ in range(2)]
    first_id = f"{HOST}:{first.pid}"
    await wait_until(lambda: _started_on(client, run, first_id, 5), 30, "the first worker to start all five jobs")
    second = start_worker()  # ready (polling the queue) before the first is told to stop
    first.signal(signal.SIGTERM)
    await wait_for_line(first, "SIGTERM: no new jobs; up to 4s for 5 running jobs to finish", 30)
    await client.redis.set(f"probe:{run}:open:short", 1, ex=600)  # inside the grace period
    assert first.wait(timeout=grace_s + 30) == 0  # the long jobs never end on their own: the grace ended it
    assert "grace period over: 2 jobs go back to the queue, uncharged" in first.log()
    await client.redis.set(f"probe:{run}:open:long", 1, ex=600)
    for h in short:
        result = await h.wait(timeout_s=30)
        assert (result.success, result.value, result.tries, result.interruptions) == (True, first_id, 1, 0)
    for h in long:
        result = await h.wait(timeout_s=30)
        assert (result.success, result.value) == (True, f"{HOST}:{second.pid}")
        assert (result.tries, result.interruptions) == (1, 1)  # the cut-short try was not charged
    assert "Traceback" not in first.log()


async def _started_on(client: Client, run: str, worker_id: str, n: int) -> bool:
    raw: list[bytes] = await reply(client.redis.lrange(f"probe:{run}:starts", 0, -1))
    return sum(entry.decode().endswith(f"|{worker_id}") for entry in raw) >= n


async def wait_for_line(worker: WorkerProcess, line: str, timeout_s: float) -> None:
    async def logged() -> bool:
        return line in worker.log()

    await wait_until(logged, timeout_s, f"{line!r} in the log of worker {worker.pid}")


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[ServerProcess]:
    """A redis-server with appendonly on (fsync always), restartable on the same port and files."""
    port = free_port()
    server = start_aof_server(tmp_path, port)
    yield server
    server.stop()


async def test_workers_survive_a_redis_restart_and_lose_nothing(
    settings: JobqSettings, aof_redis: ServerProcess, start_worker: StartWorker, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{aof_redis.port}/0"
    workers = [start_worker(JOBQ_REDIS_URL=url, ready=False) for _ in range(2)]
    s = JobqSettings(redis_url=url, queue_name=settings.queue_name, task_modules=settings.task_modules)
    run = uuid.uuid4().hex[:8]
    async with Client(s) as client:
        handles = await client.enqueue_many([JobRequest("tracked", {"run": run, "seconds": 0.05}) for _ in range(300)])
        await wait_until(lambda: _done_at_least(client, handles, 50), 20, "some jobs to finish")
        aof_redis.stop()  # SIGTERM: Redis shuts down cleanly, fsynced AOF on disk
        await asyncio.sleep(1.5)
        restarted = start_aof_server(tmp_path, aof_redis.port)
        try:
            await wait_until(lambda: _done_at_least(client, handles, 300), 60, "every job to finish")
            assert all(w.proc.poll() is None for w in workers)  # still alive
            more = await client.enqueue_many([JobRequest("add", {"a": i, "b": 1}) for i in range(10)])
            assert [(await h.result(timeout_s=20)).total for h in more] == [i + 1 for i in range(10)]
            assert all([(await h.wait(timeout_s=5)).success for h in handles])
        finally:
            restarted.stop()
    assert any("lost Redis" in w.log() for w in workers)


async def _done_at_least(client: Client, handles: list, n: int) -> bool:  # type: ignore[type-arg]
    async with client.redis.pipeline(transaction=False) as pipe:
        for h in handles:
            pipe.exists(f"arq:result:{h.job_id}")
        done: list[int] = await pipe.execute()
        return sum(done) >= n


async def test_workers_survive_killed_connections_and_a_ten_second_pause(
    client: Client, start_worker: StartWorker
) -> None:
    workers = [start_worker() for _ in range(2)]
    run = uuid.uuid4().hex[:8]
    handles = await client.enqueue_many([JobRequest("tracked", {"run": run, "seconds": 0.05}) for _ in range(150)])
    await wait_until(lambda: _done_at_least(client, handles, 20), 20, "some jobs to finish")
    admin = redis.Redis.from_url(client.settings.redis_url)
    try:
        admin.client_kill_filter(_type="normal", skipme=True)
        await asyncio.sleep(0.5)
        admin.execute_command("CLIENT", "PAUSE", 10_000, "ALL")
        await asyncio.sleep(10.5)
    finally:
        admin.close()
    await wait_until(lambda: _done_at_least(client, handles, 150), 60, "every job to finish")
    assert all(w.proc.poll() is None for w in workers)
    assert all([(await h.wait(timeout_s=5)).success for h in handles])


async def test_cron_ticks_run_exactly_once_across_three_restarting_workers(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    env = {"JOBQ_TASK_MODULES": "tests.cron_tasks", "JOBQ_CRON": '{"quarter-hourly": "off"}'}
    workers = [start_worker(**env) for _ in range(3)]
    began = time.time()
    await asyncio.sleep(8)
    workers[0].signal(signal.SIGTERM)  # restarts during the run
    workers.append(start_worker(**env))
    await asyncio.sleep(6)
    workers[1].signal(signal.SIGKILL)
    workers.append(start_worker(**env))
    await asyncio.sleep(9)
    ended = time.time()
    r = redis.Redis.from_url(settings.redis_url)
    try:
        keys = [k.decode() for k in r.scan_iter(match=f"probe:{settings.queue_name}:cron:every-second:*", count=1000)]
        counts = {k: int(sync_reply(r.get(k)) or 0) for k in keys}
    finally:
        r.close()
    ticks = sorted(int(k.rsplit(":", 1)[1]) for k in counts)
    inside = [t for t in ticks if began * 1000 + 2000 <= t <= ended * 1000 - 3000]
    assert len(inside) >= 18
    assert set(counts.values()) == {1}  # each tick ran exactly once
    assert all(b - a == 1000 for a, b in itertools.pairwise(inside))  # none missing
    assert len(ticks) >= 20
