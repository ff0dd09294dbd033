"""Workflows (issue 17), measured with real worker processes: a chord of 10,000 no-op members over 2 workers,
against the same 10,000 jobs enqueued as plain jobs (``enqueue_many``) to 2 fresh workers. jobq only.

Each side starts its 2 workers on a fresh queue, waits until they are ready and warms them up (a 100-member chord,
or 100 plain jobs), then times one run from just before the jobs are built (the ``chord()``, which checks it, or the
``JobRequest`` list) to the end of the last job: the chord's
callback, or the last plain job (their ``ft``, read from the stored results). The callback (``gather``,
bench/tasks.py) counts its runs in Redis and checks that it got every result in the group's order; anything else
fails the measurement. Redis commands are ``INFO commandstats`` calls (Lua-internal ones included) from before the
enqueue to the end, the harness's own waiting EXISTS calls left out, divided by the number of jobs (the chord's
enqueue, its callback and the callback's read of the 10,000 results are charged to its members). Runnable alone:
``python -m bench --only workflows``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.harness import JOBQ, System, calls_delta, command_calls, fresh_queue, reset_redis, running_workers
from bench.measure import Context, Sample
from bench.producers import Finished, Producer
from bench.tasks import gather, member
from worker import Client, JobRequest, chord, group, load_settings, step

WORKERS = 2
MEMBERS = 10_000
QUICK_MEMBERS = 2_000
WARM_UP = 100
WAIT_S = 300.0


@dataclass(frozen=True)
class Run:
    """One timed run: seconds from the enqueue call to the last end, from the first start to the last end, the
    enqueue call's own seconds, and Redis commands by name (the harness's polls left out)."""

    total_s: float
    running_s: float
    enqueue_s: float
    calls: dict[str, int]


def _client(ctx: Context, queue: str) -> Client:
    return Client(load_settings(redis_url=ctx.url, queue_name=queue, task_modules=["bench.tasks"]))


async def _plain(client: Client, p: Producer, run: str, n: int) -> tuple[float, list[Finished]]:
    """Enqueue ``n`` plain ``member`` jobs; wait for them. Returns the enqueue's seconds and the finished jobs."""
    begin = time.perf_counter()
    handles = await client.enqueue_many([JobRequest("member", {"i": i}) for i in range(n)])
    enqueue_s = time.perf_counter() - begin
    ids = [h.job_id for h in handles]
    await p.wait_done(ids, WAIT_S)
    return enqueue_s, await p.results(ids)


async def _chord(client: Client, p: Producer, run: str, n: int) -> tuple[float, list[Finished]]:
    """Enqueue a chord of ``n`` ``member`` steps and a ``gather`` callback; wait for the callback. Returns the
    enqueue's seconds and the finished steps, the callback last."""
    flow = chord(group(step(member, {"i": i}) for i in range(n)), step(gather, {"run": run}, into="values"))
    begin = time.perf_counter()
    wf = await client.enqueue_workflow(flow)
    enqueue_s = time.perf_counter() - begin
    callback = wf.last[0].job_id
    await p.wait_done([callback], WAIT_S)
    finished = await p.results([*(f"{wf.workflow_id}.0.0.{i}" for i in range(n)), callback])
    expected = {"runs": 1, "count": n, "in_order": 1}
    if finished[-1].value != expected:
        raise RuntimeError(f"the chord's callback returned {finished[-1].value!r}, not {expected!r}")
    return enqueue_s, finished


Side = Callable[[Client, Producer, str, int], Awaitable[tuple[float, list[Finished]]]]


def _measure(ctx: Context, side: Side, n: int) -> Run:
    """Start 2 workers on a fresh queue, warm them up with ``side``, then time ``side`` with ``n`` jobs."""
    r = ctx.redis()
    reset_redis(r)
    queue = fresh_queue(JOBQ)

    async def go() -> Run:
        async with _client(ctx, queue) as client, Producer(JOBQ, ctx.url, queue) as p:
            await side(client, p, uuid.uuid4().hex[:8], WARM_UP)
            before, sent = command_calls(r), p.commands_sent
            started = time.time()
            enqueue_s, finished = await side(client, p, uuid.uuid4().hex[:8], n)
            calls = calls_delta(before, command_calls(r))
        calls["exists"] = calls.get("exists", 0) - (p.commands_sent - sent)  # the waiting loop's, not the queue's
        end = max(f.finish_s for f in finished)
        return Run(
            end - started, end - min(f.start_s for f in finished), enqueue_s, {k: v for k, v in calls.items() if v}
        )

    with running_workers(JOBQ, ctx.url, queue, count=WORKERS) as workers:
        workers.wait_ready(r)
        result = asyncio.run(go())
        workers.check_alive()
    return result


def _per_job(calls: dict[str, int], n: int) -> dict[str, float]:
    return {k: v / n for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}


def workflows(ctx: Context, system: System) -> Sample:
    """The chord's figures against the plain jobs', for jobq (the others have no workflows: empty samples)."""
    if not system.is_jobq:
        return Sample({})
    n = QUICK_MEMBERS if ctx.sizes.pickup_jobs < 100 else MEMBERS
    plain = _measure(ctx, _plain, n)
    chorded = _measure(ctx, _chord, n)
    plain_cmds, chord_cmds = sum(plain.calls.values()) / n, sum(chorded.calls.values()) / n
    values = {
        "chord_s": chorded.total_s,
        "plain_s": plain.total_s,
        "time_ratio": chorded.total_s / plain.total_s,
        "chord_running_s": chorded.running_s,
        "plain_running_s": plain.running_s,
        "running_ratio": chorded.running_s / plain.running_s,
        "chord_enqueue_s": chorded.enqueue_s,
        "plain_enqueue_s": plain.enqueue_s,
        "member_cmds": chord_cmds,
        "plain_cmds": plain_cmds,
        "cmds_ratio": chord_cmds / plain_cmds,
    }
    detail: dict[str, Any] = {
        "members": n,
        "chord_breakdown": _per_job(chorded.calls, n),
        "plain_breakdown": _per_job(plain.calls, n),
    }
    return Sample(values, detail)
