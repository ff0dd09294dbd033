"""``jobq demo``: worker processes and a producer push a real batch of jobs through Redis.

The batch holds text jobs (enqueued in one ``enqueue_many``), a deferred job, a job that fails
once and then succeeds, a job that fails every try and ends in the dead letters, a long job that
is aborted while it runs, a payload the producer rejects before anything is written, and a
duplicate ``job_id`` that is not enqueued twice. The demo prints a
summary and exits non-zero unless every outcome is the expected one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import Client, JobRequest
from .dead_letters import DeadLetterFilter, DeadLetterStore
from .embedded import EmbeddedRedis
from .errors import InvalidPayload, JobqError
from .handle import JobHandle
from .processes import stop_process
from .results import JobResult
from .settings import JobqSettings, load_settings
from .states import JobStatus, Outcome

DEFER_S = 1.5
DETAIL_CHARS = 48
TEXTS = (
    "The queue is a sorted set; each member is a job id and each score is the time it may run.",
    "Workers claim due jobs, run them as coroutines under a timeout, and store each result with a TTL.",
    "A failing job is tried again later, with a backoff that grows, until its tries are used up.",
    "Producers validate every payload before writing it, so a bad job never reaches the workers.",
)


@dataclass(frozen=True)
class DemoOptions:
    """What ``jobq demo`` was asked to do."""

    jobs: int = 24
    workers: int = 2
    embedded: Literal["auto", "redis-server", "fakeredis"] = "auto"
    timeout_s: float = 60.0


@dataclass
class Group:
    """Jobs of one kind in the batch, and the outcome the demo expects of them."""

    name: str
    task: str
    handles: list[JobHandle[Any]]
    expect: Outcome
    expect_tries: int
    results: list[JobResult[Any]] = field(default_factory=list)


@dataclass
class Report:
    """Everything the summary prints."""

    groups: list[Group]
    checks: list[tuple[str, bool]]
    elapsed_s: float


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
        env["JOBQ_QUEUE_NAME"] = f"jobq:demo:{uuid.uuid4().hex[:8]}"
        env["JOBQ_TASK_MODULES"] = "tasks"
        settings = load_settings(
            redis_url=env["JOBQ_REDIS_URL"], queue_name=env["JOBQ_QUEUE_NAME"], task_modules=["tasks"]
        )
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jobq-demo-")))
        workers = _start_workers(options.workers, env, logs)
        stack.callback(_stop_workers, workers, console)
        console.print(f"Started {len(workers)} worker processes on queue {settings.queue_name!r}.")
        try:
            report = asyncio.run(_produce(settings, options, console))
        except (JobqError, TimeoutError) as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            _print_worker_logs(logs, console)
            return False
    _print_report(report, console)
    return all(ok for _, ok in report.checks)


def _start_workers(count: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    env = {**env, "JOBQ_LOG_LEVEL": "WARNING"}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "worker", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(logs / f"worker-{i}.log").open("wb"),
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


async def _produce(settings: JobqSettings, options: DemoOptions, console: Console) -> Report:
    async with Client(settings) as client:
        started = time.monotonic()
        batch = [
            JobRequest("word_stats", {"text": TEXTS[i % len(TEXTS)], "top": 3}, job_id=_text_job_id(settings, i))
            for i in range(options.jobs)
        ]
        ok, dead = Outcome.SUCCEEDED, Outcome.DEAD_LETTERED
        groups = [
            Group("text batch", "word_stats", await client.enqueue_many(batch), ok, 1),
            Group("deferred", "ping", [await client.enqueue("ping", {"message": "later"}, defer_by=DEFER_S)], ok, 1),
            Group("fails once", "fail", [await client.enqueue("fail", {"fail_tries": 1})], ok, 2),
            Group("always fails", "fail", [await client.enqueue("fail", {"message": "broken on purpose"})], dead, 3),
            Group("aborted", "sleep", [await client.enqueue("sleep", {"seconds": 60})], Outcome.ABORTED, 1),
        ]
        checks = [await _check_rejected(client), await _check_duplicate(client, _text_job_id(settings, 0))]
        checks.append(await _check_abort(groups[4].handles[0]))
        await _wait_all(groups, options.timeout_s, console)
        deferred = groups[1].results[0]
        ran_late_enough = (deferred.started_at - deferred.enqueued_at).total_seconds() >= DEFER_S - 0.01
        checks.append((f"deferred job started no earlier than {DEFER_S}s after enqueue", ran_late_enough))
        for g in groups:
            as_expected = all(r.outcome is g.expect and r.tries == g.expect_tries for r in g.results)
            tries = f"{g.expect_tries} {'try' if g.expect_tries == 1 else 'tries'}"
            checks.append((f"{g.name}: {len(g.results)} of {len(g.results)} {g.expect} after {tries}", as_expected))
        dead_letters = DeadLetterStore(client.redis, settings.queue_name, job_expires_s=settings.job_expires_s)
        failed_id = groups[3].handles[0].job_id
        kept = failed_id in {e.job_id for e in await dead_letters.list(DeadLetterFilter(task="fail"))}
        checks.append(("the job that always fails is kept in the dead-letter store", kept))
        return Report(groups, checks, time.monotonic() - started)


async def _check_abort(handle: JobHandle[Any]) -> tuple[str, bool]:
    for _ in range(1000):  # wait until a worker runs it, then abort it mid-try
        if (await handle.status()).status is JobStatus.IN_PROGRESS:
            break
        await asyncio.sleep(0.01)
    started = time.monotonic()
    stopped = await handle.abort(wait=5) is JobStatus.ABORTED
    return (f"running job aborted in {time.monotonic() - started:.2f}s", stopped)


async def _check_rejected(client: Client) -> tuple[str, bool]:
    before = await client.redis.zcard(client.settings.queue_name)
    try:
        await client.enqueue("word_stats", {"text": 42, "top": 0})
    except InvalidPayload as exc:
        after = await client.redis.zcard(client.settings.queue_name)
        return (f"invalid payload rejected before writing ({', '.join(exc.fields)})", after == before)
    return ("invalid payload rejected before writing", False)


def _text_job_id(settings: JobqSettings, i: int) -> str:
    # Unique per run (the queue name is), so a shared Redis never hands back an earlier run's results.
    return f"{settings.queue_name.rsplit(':', 1)[-1]}-text-{i}"


async def _check_duplicate(client: Client, job_id: str) -> tuple[str, bool]:
    again = await client.enqueue("word_stats", {"text": TEXTS[0]}, job_id=job_id)
    return (f"second enqueue of job id {job_id} created nothing", not again.created)


async def _wait_all(groups: list[Group], timeout_s: float, console: Console) -> None:
    total = sum(len(g.handles) for g in groups)
    columns = (TextColumn("jobs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("jobs", total=total)

        async def wait_one(group: Group, handle: JobHandle[Any]) -> None:
            group.results.append(await handle.wait(timeout_s))
            progress.advance(bar)

        await asyncio.gather(*(wait_one(g, h) for g in groups for h in g.handles))


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}" if values else "-"


def _detail(group: Group) -> str:
    first = group.results[0]
    top = getattr(first.value, "top", None)  # word_stats results (the demo knows tasks only by name)
    if first.error is not None:
        text = f"{first.error.error_type.rsplit('.', 1)[-1]}: {first.error.message}"
    elif top is not None:
        text = "top: " + ", ".join(f"{w.word}={w.count}" for w in top)
    else:
        text = repr(first.value)
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _print_report(report: Report, console: Console) -> None:
    table = Table(title="jobq demo: what happened")
    for column in ("jobs", "task", "done", "outcome", "tries", "run ms", "first result"):
        table.add_column(column, no_wrap=column != "first result")
    for g in report.groups:
        tries = sorted({r.tries for r in g.results})
        outcomes = sorted({str(r.outcome) for r in g.results})
        table.add_row(
            g.name,
            g.task,
            str(len(g.results)),
            ",".join(outcomes),
            ",".join(map(str, tries)),
            _median_ms([r.duration_s for r in g.results]),
            _detail(g),
        )
    console.print(table)
    done = sum(len(g.results) for g in report.groups)
    console.print(f"{done} jobs finished in {report.elapsed_s:.2f}s.")
    for text, ok in report.checks:
        console.print(f"  {'[green]✓[/green]' if ok else '[red]✗[/red]'} {text}")
