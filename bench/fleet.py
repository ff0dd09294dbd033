"""The fleet sweep (issue 15): what one trickled job costs Redis, and how fast it is picked up, as idle workers grow.

For each K in :data:`FLEET_SIZES`, K worker processes are started on one queue and left to go idle; then the idle
load is read over :data:`IDLE_WINDOW_S` and N ``stamp`` jobs are enqueued one at a time, :data:`GAP_S` apart.
Commands are ``INFO commandstats`` calls (Lua-internal ones included) from the first enqueue to the last result,
without the producer's own waiting EXISTS calls; pickup is the task's start minus the moment before its enqueue.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.harness import System, calls_delta, command_calls, fresh_queue, reset_redis, running_workers
from bench.measure import Context, Sample
from bench.producers import Producer

FLEET_SIZES = (1, 4, 16, 64)
QUICK_FLEET_SIZES = (1, 4)
JOBS = 200
GAP_S = 0.01
SETTLE_S = 1.0
IDLE_WINDOW_S = 10.0  # two heartbeats and fallback polls (5 s each) of every worker
QUIET_S = 2.0  # the idleness before the "first job after a quiet period" pickup
READY_TIMEOUT_S = 300.0  # 64 processes importing on 2 cores


def _one_size(ctx: Context, system: System, k: int) -> dict[str, float]:
    r = ctx.redis()
    reset_redis(r)
    queue = fresh_queue(system)
    with running_workers(system, ctx.url, queue, count=k) as workers:
        workers.wait_ready(r, timeout_s=READY_TIMEOUT_S)

        async def go() -> dict[str, float]:
            async with Producer(system, ctx.url, queue) as p:
                await p.wait_done([await p.enqueue("stamp")], timeout_s=60)  # every connection opened
                await asyncio.sleep(SETTLE_S)
                quiet = command_calls(r)
                await asyncio.sleep(IDLE_WINDOW_S)
                before = command_calls(r)
                idle = sum(calls_delta(quiet, before).values()) / IDLE_WINDOW_S
                sent_before = p.commands_sent
                sent: list[tuple[str, float]] = []
                begin = time.monotonic()
                for i in range(JOBS):
                    await asyncio.sleep(max(0.0, begin + i * GAP_S - time.monotonic()))
                    t0 = time.time()
                    sent.append((await p.enqueue("stamp"), t0))
                await p.wait_done([job_id for job_id, _ in sent])
                delta = calls_delta(before, command_calls(r))
                delta["exists"] = delta.get("exists", 0) - (p.commands_sent - sent_before)
                finished = await p.results([job_id for job_id, _ in sent])
                await asyncio.sleep(QUIET_S)
                t_quiet = time.time()
                after_quiet = await p.enqueue("stamp")
                await p.wait_done([after_quiet])
                (quiet_start,) = await p.results([after_quiet])
            lat_ms = [(f.value - t0) * 1000 for f, (_, t0) in zip(finished, sent, strict=True)]
            q = statistics.quantiles(lat_ms, n=100, method="inclusive")
            return {
                f"k{k}_cmds": sum(delta.values()) / JOBS,
                f"k{k}_evalsha": delta.get("evalsha", 0) / JOBS,
                f"k{k}_p50_ms": q[49],
                f"k{k}_p99_ms": q[98],
                f"k{k}_idle_per_worker_s": idle / k,
                f"k{k}_after_quiet_ms": (quiet_start.value - t_quiet) * 1000,
            }

        figures = asyncio.run(go())
        workers.check_alive()
    return figures


def fleet(ctx: Context, system: System) -> Sample:
    """The sweep for one system: jobq and tuned arq (default arq's 0.5 s poll makes its pickups meaningless)."""
    if system.key == "arq":
        return Sample({})
    sizes = QUICK_FLEET_SIZES if ctx.sizes.pickup_jobs < 100 else FLEET_SIZES
    values: dict[str, float] = {}
    for k in sizes:
        values |= _one_size(ctx, system, k)
    return Sample(values)
