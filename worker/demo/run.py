"""``jobq demo``: worker processes and a producer push a real batch of jobs through Redis.

It starts an embedded Redis unless ``JOBQ_REDIS_URL`` is set, a local web site for the web jobs,
and the worker processes; runs the batch of :mod:`worker.demo.batch`; prints the summary; and
stops everything it started. It exits non-zero unless every outcome is the expected one.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from worker.demo.batch import Report, print_report, produce
from worker.demo.site import DemoSite
from worker.errors import JobqError
from worker.process.embedded import EmbeddedRedis
from worker.process.processes import stop_process
from worker.settings import JobqSettings, load_settings


@dataclass(frozen=True)
class DemoOptions:
    """What ``jobq demo`` was asked to do."""

    jobs: int = 24
    workers: int = 2
    embedded: Literal["auto", "redis-server", "fakeredis"] = "auto"
    timeout_s: float = 60.0


def run_demo(options: DemoOptions, console: Console | None = None) -> bool:
    """Run the demo end to end; return whether every outcome was the expected one."""
    # Piped output (CI, make) gets a fixed width wide enough for the summary table.
    console = console or Console(width=None if sys.stdout.isatty() else 110)
    with ExitStack() as stack:
        env = dict(os.environ)
        if "JOBQ_REDIS_URL" in os.environ:
            console.print(f"Using the configured Redis ({load_settings().redis_url}).")
        else:
            server = stack.enter_context(EmbeddedRedis.start(options.embedded))
            env["JOBQ_REDIS_URL"] = server.url
            console.print(f"Started an embedded Redis ({server.kind}) at {server.url}.")
        env["JOBQ_QUEUE_NAME"] = f"demo:{uuid.uuid4().hex[:8]}"  # jobq: names are reserved
        env["JOBQ_TASK_MODULES"] = "tasks"
        env.setdefault("JOBQ_WEBHOOK_SECRET", secrets.token_hex(16))
        settings = load_settings(
            redis_url=env["JOBQ_REDIS_URL"], queue_name=env["JOBQ_QUEUE_NAME"], task_modules=["tasks"]
        )
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jobq-demo-")))
        workers = _start_workers(options.workers, env, logs, stack)
        stack.callback(_stop_workers, workers, console)
        console.print(f"Started {len(workers)} worker processes on queue {settings.queue_name!r}.")
        try:
            report = asyncio.run(_with_site(settings, env["JOBQ_WEBHOOK_SECRET"], options, console))
        except (JobqError, TimeoutError) as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            _print_worker_logs(logs, console)
            return False
    print_report(report, console)
    return all(ok for _, ok in report.checks)


async def _with_site(settings: JobqSettings, secret: str, options: DemoOptions, console: Console) -> Report:
    site = await DemoSite(secret).start()
    console.print(f"Serving the demo web site at {site.url}.")
    try:
        return await produce(settings, site, jobs=options.jobs, timeout_s=options.timeout_s, console=console)
    finally:
        await site.stop()


def _start_workers(count: int, env: dict[str, str], logs: Path, stack: ExitStack) -> list[subprocess.Popen[bytes]]:
    env = {**env, "JOBQ_LOG_LEVEL": "WARNING"}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "worker", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stack.enter_context((logs / f"worker-{i}.log").open("wb")),
        )
        for i in range(count)
    ]


def _stop_workers(workers: Sequence[subprocess.Popen[bytes]], console: Console) -> None:
    for proc in workers:  # signal all first, so they drain in parallel
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        stop_process(proc)
    console.print(f"Stopped {len(workers)} worker processes.")


def _print_worker_logs(logs: Path, console: Console) -> None:
    for log in sorted(logs.glob("worker-*.log")):
        tail = log.read_text(errors="replace").splitlines()[-15:]
        if tail:
            console.print(f"[bold]{log.name}[/bold] (last lines):\n" + "\n".join(tail), highlight=False)
