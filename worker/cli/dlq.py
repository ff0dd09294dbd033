"""``jobq dlq``: the dead letters of a queue — list, show, replay, purge."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from worker.cli.common import (
    cli_settings,
    fail,
    out_console,
    parse_when,
    print_json,
    queue_option,
    shorten,
    with_client,
)

if TYPE_CHECKING:
    from worker.client.dead_letters import DeadLetter, DeadLetterFilter, DeadLetterStore
    from worker.client.producer import Client

app = typer.Typer(
    help="Jobs that failed for good: no tries left, a permanent error, or a job that could not run at all.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Queue = Annotated[
    str | None,
    typer.Option(help="Queue whose dead letters to use (default: JOBQ_QUEUE_NAME).", callback=queue_option),
]
Task = Annotated[str | None, typer.Option(help="Only dead letters of this task.")]
ErrorType = Annotated[str | None, typer.Option(help="Only this error type (class name or dotted name).")]
Since = Annotated[str | None, typer.Option(help="Only dead letters written after this: ISO time or 30m, 2h, 7d ago.")]
Until = Annotated[str | None, typer.Option(help="Only dead letters written before this: ISO time or a duration ago.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Ids = Annotated[list[str] | None, typer.Argument(help="Job ids; or select with --task/--error-type/--since/--until.")]
All = Annotated[bool, typer.Option("--all", help="Select every dead letter (when no ids or filters are given).")]


def _store(client: Client, queue: str | None) -> DeadLetterStore:
    from worker.client.dead_letters import DeadLetterStore

    return DeadLetterStore(
        client.redis, queue or client.settings.queue_name, job_expires_s=client.settings.job_expires_s
    )


def _filter(task: str | None, error_type: str | None, since: str | None, until: str | None) -> DeadLetterFilter:
    from worker.client.dead_letters import DeadLetterFilter

    return DeadLetterFilter(task, error_type, parse_when(since, "--since"), parse_when(until, "--until"))


def _entry_json(entry: DeadLetter) -> dict[str, object]:
    data = asdict(entry)
    data["failed_at"] = entry.failed_at.isoformat()
    data["enqueued_at"] = entry.enqueued_at.isoformat()
    return data


@app.command("list")
def list_(
    queue: Queue = None,
    task: Task = None,
    error_type: ErrorType = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, newest first.")] = 50,
    as_json: AsJson = False,
) -> None:
    """List dead letters, newest first."""
    settings = cli_settings()
    where = _filter(task, error_type, since, until)
    entries = with_client(settings, lambda client: _store(client, queue).list(where, limit=limit))
    if as_json:
        print_json([_entry_json(e) for e in entries])
        return
    from rich.table import Table

    table = Table("job", "task", "error", "message", "tries", "failed at", title=f"{len(entries)} dead letters")
    for e in entries:
        if e.corrupt is not None:  # not an entry jobq wrote: say what is wrong, purge it
            table.add_row(e.job_id, "", "corrupt", shorten(f"{e.corrupt} ({e.raw_size} bytes)", 50), "", "")
            continue
        table.add_row(
            e.job_id,
            e.task,
            e.error_type.rsplit(".", 1)[-1],
            shorten(e.message, 50),
            str(e.tries),
            e.failed_at.isoformat(timespec="seconds"),
        )
    out_console().print(table)


@app.command()
def show(job_id: str, queue: Queue = None, as_json: AsJson = False) -> None:
    """Show one dead letter in full: error, traceback, tries, times and the job's envelope."""
    settings = cli_settings()
    entry = with_client(settings, lambda client: _store(client, queue).show(job_id))
    if as_json:
        print_json(_entry_json(entry))
        return
    from rich.table import Table

    table = Table("field", "value", show_header=False)
    if entry.corrupt is not None:
        for label, value in (
            ("job", entry.job_id),
            ("queue", entry.queue),
            ("corrupt", f"{entry.corrupt} ({entry.raw_size} bytes stored); it cannot be replayed: purge it"),
        ):
            table.add_row(label, value)
        out_console().print(table)
        return
    for label, value in (
        ("job", entry.job_id),
        ("queue", entry.queue),
        ("task", entry.task),
        ("error", f"{entry.error_type}: {entry.message}"),
        ("tries", f"{entry.tries} (+{entry.interruptions} interrupted)"),
        ("enqueued", entry.enqueued_at.isoformat(timespec="milliseconds")),
        ("failed", entry.failed_at.isoformat(timespec="milliseconds")),
        ("envelope", entry.envelope or "(none: the job expired before it ran)"),
    ):
        table.add_row(label, value)
    out_console().print(table)
    if entry.traceback:
        out_console().print(entry.traceback, markup=False)


def _selection(ids: list[str] | None, where: DeadLetterFilter, select_all: bool, verb: str) -> None:
    from worker.client.dead_letters import DeadLetterFilter

    if not ids and where == DeadLetterFilter() and not select_all:
        fail(f"give job ids, a filter (--task, --error-type, --since, --until) or --all to {verb}", 2)


@app.command()
def replay(
    ids: Ids = None,
    queue: Queue = None,
    task: Task = None,
    error_type: ErrorType = None,
    since: Since = None,
    until: Until = None,
    select_all: All = False,
) -> None:
    """Put dead letters back on their queue; each starts again with fresh tries."""
    settings = cli_settings()
    where = _filter(task, error_type, since, until)
    _selection(ids, where, select_all, "replay")

    from worker.errors import CorruptDeadLetter, JobNotFound, ReplayRefused

    refused: list[str] = []

    async def go(client: Client) -> int:
        store = _store(client, queue)
        if not ids:
            return await store.replay_many(where)
        done = 0
        for job_id in ids:
            try:
                done += await store.replay(job_id)
            except (JobNotFound, ReplayRefused, CorruptDeadLetter) as exc:  # none, no envelope, queued again, corrupt
                refused.append(str(exc))
        return done

    typer.echo(f"replayed {with_client(settings, go)} dead letters")
    for message in refused:
        typer.echo(f"error: {message}", err=True)
    if refused:
        raise typer.Exit(1)


@app.command()
def purge(
    ids: Ids = None,
    queue: Queue = None,
    task: Task = None,
    error_type: ErrorType = None,
    since: Since = None,
    until: Until = None,
    select_all: All = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm deleting a filtered or --all selection.")] = False,
) -> None:
    """Delete dead letters for good. Deleting by filter or --all needs --yes."""
    settings = cli_settings()
    where = _filter(task, error_type, since, until)
    _selection(ids, where, select_all, "purge")
    if not ids and not yes:
        fail("purging by filter or --all deletes dead letters for good; add --yes to confirm", 2)

    async def go(client: Client) -> int:
        store = _store(client, queue)
        if not ids:
            return await store.purge_many(where)
        return sum([await store.purge(job_id) for job_id in ids])

    typer.echo(f"purged {with_client(settings, go)} dead letters")
