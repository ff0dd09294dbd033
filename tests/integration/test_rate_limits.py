"""Fleet-wide rate limits with real worker processes: the rate holds across the fleet, a backlog flows at the
full rate (woken by the marker, not by polls), another key is not held back, and waiting costs no try."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable

import pytest

from tests.harness import reply
from tests.integration.harness import StartWorker
from worker import JobRequest
from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis
from worker.settings import JobqSettings

pytestmark = pytest.mark.integration

PER_S, BURST = 20, 2  # tests/rate_tasks.py: rated
BACKLOG = 4 * PER_S  # about 4 s of jobs on one key


@pytest.fixture
def settings(redis_server: EmbeddedRedis, queue_name: str, make_settings: Callable[..., JobqSettings]) -> JobqSettings:
    return make_settings(redis_url=redis_server.url, queue_name=queue_name, task_modules=["tests.rate_tasks"])


async def starts(client: Client, run: str) -> list[tuple[str, float, int, str]]:
    """Every start the jobs recorded: (key, wall time, try number, job id)."""
    entries = await reply(client.redis.lrange(f"probe:{run}:starts", 0, -1))
    parsed = [entry.decode().split("|") for entry in entries]
    return [(key, float(at), int(try_number), job_id) for key, at, try_number, job_id in parsed]


async def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():  # type: ignore[misc]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def most_in_a_window(times: list[float], window_s: float) -> int:
    """The most starts in any window of ``window_s`` (each window begins at a start: that is where the most are)."""
    times = sorted(times)
    most, last = 0, 0
    for first, at in enumerate(times):
        while last < len(times) and times[last] < at + window_s:
            last += 1
        most = max(most, last - first)
    return most


async def test_a_rate_limit_holds_across_two_workers_and_spares_other_keys(
    client: Client, start_worker: StartWorker
) -> None:
    # Idle workers poll once a second only: the backlog keeps its rate through the marker the admissions arm.
    for _ in range(2):
        start_worker(JOBQ_POLL_DELAY_S="1.0")
    run = uuid.uuid4().hex[:8]
    backlog = await client.enqueue_many([JobRequest("rated", {"run": run, "key": "a"}) for _ in range(BACKLOG)])

    async def a_while_in() -> bool:
        return sum(1 for s in await starts(client, run) if s[0] == "a") >= PER_S  # about a second of the backlog

    await wait_for(a_while_in, 15, "the first second of key a's backlog")
    b_enqueued = time.time()
    others = await client.enqueue_many([JobRequest("rated", {"run": run, "key": "b"}) for _ in range(5)])

    async def all_started() -> bool:
        return len(await starts(client, run)) >= BACKLOG + len(others)

    await wait_for(all_started, 30, "every job to start")
    results = [await h.wait(timeout_s=15) for h in [*backlog, *others]]
    assert all(r.success for r in results)
    assert [r.tries for r in results] == [1] * len(results)  # waiting for the rate spent no try
    recorded = await starts(client, run)
    assert sorted(s[3] for s in recorded) == sorted(h.job_id for h in [*backlog, *others])  # each ran once
    assert {s[2] for s in recorded} == {1}

    a_times = sorted(s[1] for s in recorded if s[0] == "a")
    b_times = sorted(s[1] for s in recorded if s[0] == "b")
    # Key b's five jobs (a burst of 2, then one each 50 ms) start at once, while key a still has seconds to go.
    assert max(b_times) - b_enqueued < 1.0, max(b_times) - b_enqueued
    assert a_times[-1] - max(b_times) > 1.0
    # The steady part (after the first burst): the configured rate, within 10 %.
    steady = a_times[BURST:]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    most = most_in_a_window(a_times, 1.0)
    print(f"key a: {rate:.2f} starts/s over {steady[-1] - steady[0]:.2f} s; most in 1 s: {most}")
    gaps = [(i, round(b - a, 3)) for i, (a, b) in enumerate(itertools.pairwise(a_times)) if b - a > 0.08]
    assert 0.9 * PER_S <= rate <= 1.1 * PER_S, (rate, "gaps (index, s) over 80 ms:", gaps)
    assert most <= PER_S + BURST
