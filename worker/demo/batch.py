"""The batch ``jobq demo`` pushes through the workers, the checks it makes, and the summary it prints.

Text jobs (one ``enqueue_many``), a deferred job, a job that fails once then succeeds, one that fails
every try and ends in the dead letters, a long job aborted while it runs, signed webhooks to a local
receiver (one refused once, so retried), a concurrent fetch of local pages and a crawl (a workflow: one
job per page, then a summary); plus a payload the producer rejects before writing and a duplicate ``job_id``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker.client.dead_letters import DeadLetterFilter, DeadLetterStore
from worker.client.handle import JobHandle
from worker.client.producer import Client, JobRequest
from worker.client.results import JobResult
from worker.demo.site import DemoSite
from worker.errors import InvalidPayload
from worker.settings import JobqSettings
from worker.states import TERMINAL_STATUSES, JobStatus, Outcome

DEFER_S = 1.5
DETAIL_CHARS = 48
PAGES = 20
TEXTS = (
    "The queue is a sorted set; each member is a job id and each score is the time it may run.",
    "Workers claim due jobs, run them as coroutines under a timeout, and store each result with a TTL.",
    "A failing job is tried again later, with a backoff that grows, until its tries are used up.",
    "Producers validate every payload before writing it, so a bad job never reaches the workers.",
)


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


async def produce(settings: JobqSettings, site: DemoSite, *, jobs: int, timeout_s: float, console: Console) -> Report:
    """Enqueue the batch, wait for every job, and check each outcome."""
    async with Client(settings) as client:
        started = time.monotonic()
        groups = await _enqueue(client, settings, site, jobs)
        checks = [await _check_rejected(client), await _check_duplicate(client, _text_job_id(settings, 0))]
        checks.append(await _check_abort(groups[4].handles[0]))
        await _wait_all(groups, timeout_s, console)
        deferred = groups[1].results[0]
        ran_late_enough = (deferred.started_at - deferred.enqueued_at).total_seconds() >= DEFER_S - 0.01
        checks.append((f"deferred job started no earlier than {DEFER_S}s after enqueue", ran_late_enough))
        for g in groups:
            as_expected = all(r.outcome is g.expect and r.tries == g.expect_tries for r in g.results)
            tries = f"{g.expect_tries} {'try' if g.expect_tries == 1 else 'tries'}"
            checks.append((f"{g.name}: {len(g.results)} of {len(g.results)} {g.expect} after {tries}", as_expected))
        checks += await _check_web(client, settings, site, groups, timeout_s)
        return Report(groups, checks, time.monotonic() - started)


async def _enqueue(client: Client, settings: JobqSettings, site: DemoSite, jobs: int) -> list[Group]:
    batch = [
        JobRequest("word_stats", {"text": TEXTS[i % len(TEXTS)], "top": 3}, job_id=_text_job_id(settings, i))
        for i in range(jobs)
    ]
    ok, dead = Outcome.SUCCEEDED, Outcome.DEAD_LETTERED
    hook = f"{site.url}/hook"
    pages = [f"{site.url}/page/{n}" for n in range(PAGES)]
    webhooks = [await client.enqueue("deliver_webhook", {"url": hook, "event": f"order.{n}"}) for n in range(3)]
    flaky = {"url": hook, "event": "flaky"}
    return [
        Group("text batch", "word_stats", await client.enqueue_many(batch), ok, 1),
        Group("deferred", "ping", [await client.enqueue("ping", {"message": "later"}, defer_by=DEFER_S)], ok, 1),
        Group("fails once", "fail", [await client.enqueue("fail", {"fail_tries": 1})], ok, 2),
        Group("always fails", "fail", [await client.enqueue("fail", {"message": "broken on purpose"})], dead, 3),
        Group("aborted", "sleep", [await client.enqueue("sleep", {"seconds": 60})], Outcome.ABORTED, 1),
        Group("webhooks", "deliver_webhook", webhooks, ok, 1),
        Group("webhook, 503 once", "deliver_webhook", [await client.enqueue("deliver_webhook", flaky)], ok, 2),
        Group("fetch pages", "fetch_many", [await client.enqueue("fetch_many", {"urls": pages})], ok, 1),
        Group("crawl", "crawl", [await client.enqueue("crawl", {"urls": pages[:8]})], ok, 1),
    ]


async def _check_web(
    client: Client, settings: JobqSettings, site: DemoSite, groups: list[Group], timeout_s: float
) -> list[tuple[str, bool]]:
    fetched = groups[7].results[0].value
    fetched_ok = fetched is not None and all(r.status == 200 for r in fetched.results)
    started = groups[8].results[0].value  # the crawl's CrawlOut (a dict when the client does not know the task)
    summary_id = (
        started.get("summary_job_id") if isinstance(started, dict) else getattr(started, "summary_job_id", None)
    )
    summary = None if summary_id is None else await _wait_summary(client, str(summary_id), timeout_s)
    crawled = summary is not None and (summary.get("pages"), summary.get("succeeded")) == (8, 8)
    dead_letters = DeadLetterStore(client.redis, settings.queue_name, job_expires_s=settings.job_expires_s)
    failed_id = groups[3].handles[0].job_id
    kept = failed_id in {e.job_id for e in await dead_letters.list(DeadLetterFilter(task="fail"))}
    return [
        (f"the receiver verified {site.authentic} signed webhooks, refused {site.forged} forged", site.forged == 0),
        (f"fetch_many: {PAGES} local pages fetched concurrently, all 200", fetched_ok),
        ("crawl: a workflow of 8 page jobs, then a summary of 8 succeeded", crawled),
        ("the job that always fails is kept in the dead-letter store", kept),
    ]


async def _wait_summary(client: Client, job_id: str, timeout_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout_s
    handle = client.job(job_id)
    while time.monotonic() < deadline:
        if (await handle.status()).status in TERMINAL_STATUSES:
            value = (await handle.wait(timeout_s=1)).value
            return value if isinstance(value, dict) else None
        await asyncio.sleep(0.05)
    return None


async def _check_abort(handle: JobHandle[Any]) -> tuple[str, bool]:
    for _ in range(1000):  # wait until a worker runs it, then abort it mid-try
        if (await handle.status()).status is JobStatus.IN_PROGRESS:
            break
        await asyncio.sleep(0.01)
    started = time.monotonic()
    stopped = await handle.abort(wait_s=5) is JobStatus.ABORTED
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


def print_report(report: Report, console: Console) -> None:
    """The summary table, the totals, and one line per check."""
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
