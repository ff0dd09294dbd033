"""A chord over real worker processes while its redis-server (append-only, fsync always) is stopped and started
again on the same port and files, twice: by SIGTERM (a clean shutdown) and by SIGKILL. The callback runs once, with
every member's result in order, and every member's success is recorded once."""

from __future__ import annotations

import asyncio
import functools
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis

from tests import workflow_tasks as wt
from tests.integration.harness import StartWorker, WorkerProcess
from tests.integration.servers import ServerProcess, start_aof_server
from worker import WorkflowState, chord, group, step
from worker.client.producer import Client
from worker.process.embedded import free_port
from worker.protocol.keys import wait_key
from worker.settings import JobqSettings

MEMBERS = 1000
#: 2 workers of 10 slots, 50 ms a member: at least 2.5 s of work, so both stops land mid-run.
ENV = {"JOBQ_TASK_MODULES": "tests.workflow_tasks", "JOBQ_MAX_JOBS": "10"}
SUCCEEDED = re.compile(r"job (\S+) slow_produce try \d+/\d+ succeeded")
DOWN_S = 1.0  # how long Redis stays down each time (the scenario, not a wait for anything)


async def until(predicate: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Wait for ``predicate``; Redis being down (restarting) counts as not yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await predicate():
                return
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g}s waiting for {what}"
        await asyncio.sleep(0.05)


async def members_left(client: Client, callback: str) -> int:
    """The members the callback still waits for (its blocked record's count; 0 once it is queued)."""
    left = await client.redis.hget(wait_key(callback), "n")  # type: ignore[misc]
    return int(left) if left is not None else 0


def stop(server: ServerProcess, signum: signal.Signals) -> None:
    server.proc.send_signal(signum)
    server.stop()  # waits for the exit (and reaps it); SIGKILLs what SIGTERM did not end within 5 s


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_chord_calls_back_once_with_every_result_across_redis_restarts(
    settings: JobqSettings, start_worker: StartWorker, tmp_path: Path, signum: signal.Signals
) -> None:
    workdir, port = tmp_path / "redis", free_port()
    workdir.mkdir()
    server = start_aof_server(workdir, port)
    url = f"redis://127.0.0.1:{port}/0"
    s = JobqSettings(redis_url=url, queue_name=settings.queue_name, task_modules=["tests.workflow_tasks"])
    label = uuid.uuid4().hex[:8]
    workers: list[WorkerProcess] = []
    try:
        async with Client(s) as client:
            members = group(step(wt.slow_produce, {"value": v}) for v in range(MEMBERS))
            wf = await client.enqueue_workflow(chord(members, step(wt.collect, {"label": label}, into="values")))
            callback = wf.last[0].job_id
            workers = [start_worker(ready=False, JOBQ_REDIS_URL=url, **ENV) for _ in range(2)]
            for at_most_left in (MEMBERS - 50, MEMBERS - 300):
                done = functools.partial(_at_most, client, callback, at_most_left)
                await until(done, 120, f"{MEMBERS - at_most_left} members to end")
                left = await members_left(client, callback)
                assert left > 0, "the chord ended before Redis was stopped"
                stop(server, signum)
                await asyncio.sleep(DOWN_S)
                server = start_aof_server(workdir, port)
                assert await members_left(client, callback) <= left  # nothing acknowledged was lost
            # The workflow's wait (a handle's wait on the blocked callback can miss it in the instant it is queued).
            status = await wf.wait(timeout_s=180)
            assert status.state is WorkflowState.SUCCEEDED
            assert len(status.steps) == MEMBERS + 1
            result = await wf.last[0].wait(timeout_s=5)
            assert result.value == {"runs": 1, "count": MEMBERS, "sum": sum(range(MEMBERS)), "in_order": 1}
            assert await client.redis.get(f"wfprobe:{label}") == b"1"
            assert all(w.proc.poll() is None for w in workers)  # they reconnected on their own
    finally:
        server.stop()
    logs = "".join(w.log() for w in workers)
    assert "lost Redis" in logs
    # Each member's success recorded once: a finish whose reply the restart cut off is sent again, and the
    # second send is answered by the stored result (it writes nothing, releases nothing).
    recorded = Counter(SUCCEEDED.findall(logs))
    assert set(recorded) == {f"{wf.workflow_id}.0.0.{v}" for v in range(MEMBERS)}
    assert set(recorded.values()) == {1}


async def _at_most(client: Client, callback: str, n: int) -> bool:
    return await members_left(client, callback) <= n
