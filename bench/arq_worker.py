"""A bare arq 0.28 worker for the comparison: ``python -m bench.arq_worker URL QUEUE [--tuned] [--max-jobs N]``.

Default: ``arq.worker.Worker`` with arq's defaults (poll_delay 0.5 s, max_jobs 10) on asyncio's loop,
logging as the ``arq`` CLI does (INFO, one line per job start and end). ``--tuned``: poll_delay 0.01 s,
max_jobs 100 and uvloop. ``--max-jobs`` overrides max_jobs (the I/O-bound run uses 200 for everyone).
"""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import os
import time
from typing import Any

from arq.connections import RedisSettings
from arq.logs import default_log_config
from arq.worker import Worker

from bench.ready import READY_KEY


async def noop(ctx: dict[str, Any]) -> None:
    """Do nothing."""


async def sleep(ctx: dict[str, Any], seconds: float) -> None:
    """Wait ``seconds``."""
    await asyncio.sleep(seconds)


async def stamp(ctx: dict[str, Any]) -> float:
    """The wall-clock time the job started."""
    return time.time()


async def _ready(ctx: dict[str, Any]) -> None:
    await ctx["redis"].set(READY_KEY.format(pid=os.getpid()), repr(time.time()), ex=3600)


async def _run(url: str, queue: str, tuned: bool, max_jobs: int | None) -> None:
    options: dict[str, Any] = {"poll_delay": 0.01, "max_jobs": 100} if tuned else {}
    if max_jobs is not None:
        options["max_jobs"] = max_jobs
    worker = Worker(
        functions=[noop, sleep, stamp],
        queue_name=queue,
        redis_settings=RedisSettings.from_dsn(url),
        on_startup=_ready,
        **options,
    )
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        pass  # arq's SIGTERM handler cancels the main task
    finally:
        await worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("queue")
    parser.add_argument("--tuned", action="store_true")
    parser.add_argument("--max-jobs", type=int)
    args = parser.parse_args()
    logging.config.dictConfig(default_log_config(verbose=False))
    coro = _run(args.url, args.queue, args.tuned, args.max_jobs)
    if args.tuned:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
