"""Start-up: the CLI's first answer, a worker's time to ready, and what a task module pays to import jobq.

jobq's top-level package resolves its public names lazily (PEP 562 ``__getattr__`` in ``worker/__init__.py``):
``from worker import task`` loads ``worker.taskdef`` and the base modules, not redis-py, arq or the engine.
This measures that import and, for comparison, the import of every public name (what an eager
``worker/__init__.py`` would load for any import), and ``import arq`` for arq.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time

import redis

from bench.harness import JOBQ_BIN, ROOT, System, fresh_queue, reset_redis, running_workers
from bench.measure import Context, Sample
from bench.ready import READY_KEY

#: Runs per figure of the CLI and the worker start (median kept).
CLI_RUNS = 5
WORKER_STARTS = 3

#: Fresh interpreters per repetition (the median is kept): an import costs a few hundred ms, noisy on 2 cores.
RUNS = 5

_PROBE = """
import json, sys, time
t = time.perf_counter()
exec(sys.argv[1])
elapsed_ms = (time.perf_counter() - t) * 1000
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"ms": elapsed_ms, "rss_mb": hwm_kb / 1024, "modules": len(sys.modules)}))
"""

#: The statement timed for each system; jobq's second one loads every public name.
LAZY = "from worker import task"
EVERY_NAME = "import worker\nfor name in worker.__all__: getattr(worker, name)"
ARQ = "import arq"


def _probe(statement: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, statement], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _median_of(statement: str) -> dict[str, float]:
    runs = [_probe(statement) for _ in range(RUNS)]
    return {key: statistics.median(run[key] for run in runs) for key in ("ms", "rss_mb", "modules")}


def imports(ctx: Context, system: System) -> Sample:
    """The import a task module makes: ``from worker import task`` (jobq) or ``import arq``; jobq also all names."""
    del ctx  # no Redis involved
    if system.key == "arq_tuned":
        return Sample({})  # the same import as arq's
    if not system.is_jobq:
        arq = _median_of(ARQ)
        return Sample({"task_ms": arq["ms"], "task_rss_mb": arq["rss_mb"]}, {"modules": arq["modules"]})
    lazy, every = _median_of(LAZY), _median_of(EVERY_NAME)
    return Sample(
        {"task_ms": lazy["ms"], "task_rss_mb": lazy["rss_mb"], "all_ms": every["ms"], "all_rss_mb": every["rss_mb"]},
        {"modules": lazy["modules"], "all_modules": every["modules"]},
    )


def _wall_ms(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
    return (time.perf_counter() - start) * 1000


def _ready_ms(ctx: Context, system: System, r: redis.Redis) -> float:
    """From starting the worker process to its being ready: jobq's first heartbeat, arq's start-up hook."""
    start = time.time()
    with running_workers(system, ctx.url, fresh_queue(system)) as workers:
        (pid,) = workers.pids
        key = f"jobq:worker:{socket.gethostname()}:{pid}" if system.is_jobq else READY_KEY.format(pid=pid)
        deadline = time.monotonic() + 60
        while not r.exists(key):
            workers.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.label}: no worker ready within 60 s")
            time.sleep(0.005)
        return (time.time() - start) * 1000


def startup(ctx: Context, system: System) -> Sample:
    """``--version`` and ``--help`` of the command line, and a worker process's time from exec to ready."""
    if system.key == "arq_tuned":
        return Sample({})  # the same command line and start-up as arq's
    cli = [str(JOBQ_BIN)] if system.is_jobq else [str(JOBQ_BIN.with_name("arq"))]
    r = ctx.redis()
    reset_redis(r)
    return Sample(
        {
            "version_ms": statistics.median(_wall_ms([*cli, "--version"]) for _ in range(CLI_RUNS)),
            "help_ms": statistics.median(_wall_ms([*cli, "--help"]) for _ in range(CLI_RUNS)),
            "ready_ms": statistics.median(_ready_ms(ctx, system, r) for _ in range(WORKER_STARTS)),
        }
    )
