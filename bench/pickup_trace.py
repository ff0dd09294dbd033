"""``python -m bench.pickup_trace``: where one idle worker's pickup time goes (issue 15's latency targets).

Starts its own redis-server on a free port, one ``jobq worker`` process and ``redis-cli monitor`` (which
timestamps every command as Redis receives it), then enqueues ``stamp`` jobs 10 ms apart (``--quiet`` N:
N jobs each after 2 s of quiet instead). Each pickup is split in three:

- call -> enqueue at Redis: the producer's own path (validation, envelope, redis-py) and the send;
- enqueue -> claim at Redis: the script, the marker handed to the blocked ``BZPOPMIN``, the worker's wake-up
  and its claim's send;
- claim -> task start: the claim's reply, decoding, starting the task.

Monitoring costs Redis some work: compare the total with ``make bench``'s pickup rows, not across machines.
Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench.harness import JOBQ, fresh_queue, running_workers
from bench.producers import Producer
from worker.process.embedded import EmbeddedRedis

GAP_S = 0.01
QUIET_S = 2.0
_LINE = re.compile(r"^(\d+\.\d+) \[\d+ ([^\]]+)\] \"(\w+)\"(.*)$")


async def _produce(url: str, queue: str, jobs: int, quiet: int) -> list[tuple[str, float, float]]:
    async with Producer(JOBQ, url, queue) as p:
        await p.wait_done([await p.enqueue("stamp")], timeout_s=60)
        await asyncio.sleep(1.0)
        sent: list[tuple[str, float]] = []
        begin = time.monotonic()
        for i in range(0 if quiet else jobs):
            await asyncio.sleep(max(0.0, begin + i * GAP_S - time.monotonic()))
            t0 = time.time()
            sent.append((await p.enqueue("stamp"), t0))
        for _ in range(quiet):
            await asyncio.sleep(QUIET_S)
            t0 = time.time()
            sent.append((await p.enqueue("stamp"), t0))
            await p.wait_done([sent[-1][0]])
        await p.wait_done([job_id for job_id, _ in sent])
        finished = await p.results([job_id for job_id, _ in sent])
    return [(job_id, t0, float(f.value)) for (job_id, t0), f in zip(sent, finished, strict=True)]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pickup_trace", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs trickled 10 ms apart (default 200)")
    parser.add_argument("--quiet", type=int, default=0, help="instead: this many jobs, each after 2 s of quiet")
    args = parser.parse_args(argv)
    cli = shutil.which("redis-cli")
    if cli is None:
        parser.error("redis-cli is not on PATH (Debian: apt-get install redis-tools)")
    with EmbeddedRedis.start("redis-server") as server, tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "monitor.txt"
        queue = fresh_queue(JOBQ)
        with running_workers(JOBQ, server.url, queue) as workers, log.open("w") as out:
            workers.wait_ready(redis.Redis.from_url(server.url))
            monitor = subprocess.Popen([cli, "-u", server.url, "monitor"], stdout=out)
            try:
                time.sleep(0.5)
                rows = asyncio.run(_produce(server.url, queue, args.jobs, args.quiet))
                time.sleep(0.5)
            finally:
                monitor.terminate()
                monitor.wait(timeout=10)
        events = [(float(m[1]), m[2], m[3].lower(), m[4]) for m in map(_LINE.match, log.read_text().splitlines()) if m]
    evalshas = [e for e in events if e[2] == "evalsha"]
    parts: list[tuple[float, float, float, float]] = []
    for job_id, t0, started in rows:
        enqueue = next((e for e in evalshas if job_id in e[3]), None)
        if enqueue is None:
            continue
        claim = next((e for e in evalshas if e[0] > enqueue[0] and e[1] != enqueue[1]), None)
        if claim is None:
            continue
        parts.append((enqueue[0] - t0, claim[0] - enqueue[0], started - claim[0], started - t0))
    names = ("call -> enqueue at Redis", "enqueue -> claim at Redis", "claim -> task start", "pickup in all")
    print(f"{len(parts)} pickups traced ({'after 2 s of quiet each' if args.quiet else '10 ms apart'})")
    print(f"| {'segment':<26} | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|")
    for i, name in enumerate(names):
        values = [p[i] * 1000 for p in parts]
        cells = " | ".join(f"{_quantile(values, q):6.2f}" for q in (0.5, 0.9, 0.99))
        print(f"| {name:<26} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
