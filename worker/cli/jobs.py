"""``jobq job``: one job by id — its status, its result, or its abort."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli.common import cli_settings, out_console, print_json, queue_option, renamed_option, shorten, with_client
from worker.states import JobStatus

if TYPE_CHECKING:
    from worker.client.results import JobInfo

app = typer.Typer(help="Inspect or abort one job by its id.", no_args_is_help=True, rich_markup_mode=None)

Queue = Annotated[str | None, typer.Option(help="Queue of the job (default: JOBQ_QUEUE_NAME).", callback=queue_option)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _info_rows(info: JobInfo) -> list[tuple[str, str]]:
    rows = [("job", info.job_id), ("status", info.status.value), ("task", info.task or "?")]
    rows += [("tries", str(info.tries)), ("interruptions", str(info.interruptions))]
    for label, when in (
        ("enqueued", info.enqueued_at),
        ("scheduled", info.scheduled_at),
        ("started", info.started_at),
        ("finished", info.finished_at),
    ):
        if when is not None:
            rows.append((label, when.isoformat(timespec="milliseconds")))
    if info.progress is not None:
        rows.append(("progress", f"{info.progress:.0%} {info.progress_message or ''}".rstrip()))
    if info.last_error is not None:
        rows.append(("last error", shorten(str(info.last_error), 200)))
    return rows


def info_json(info: JobInfo) -> dict[str, Any]:
    """``info`` as JSON-ready data; the last error as its stored ``{type, message, traceback}``."""
    # Not dataclasses.asdict: it deep-copies the JobFailed exception in last_error, which cannot be copied.
    data = {f.name: getattr(info, f.name) for f in fields(info)}
    data["status"] = info.status.value
    data["last_error"] = info.last_error.to_dict() if info.last_error else None
    return data


@app.command()
def status(job_id: str, queue: Queue = None, as_json: AsJson = False) -> None:
    """Show a job's status, tries, timestamps, last error and progress. Exits 1 if the job is unknown."""
    settings = cli_settings()
    info: JobInfo = with_client(settings, lambda client: client.job(job_id, queue=queue).status())
    if as_json:
        print_json(info_json(info))
    else:
        from rich.table import Table

        table = Table("field", "value", show_header=False)
        for row in _info_rows(info):
            table.add_row(*row)
        out_console().print(table)
    if info.status is JobStatus.NOT_FOUND:
        raise typer.Exit(1)


@app.command()
def result(
    job_id: str,
    queue: Queue = None,
    wait_s: Annotated[float | None, typer.Option(min=0, help="Seconds to wait for the job to finish.")] = None,
    timeout: Annotated[float | None, typer.Option(min=0, hidden=True, help="Deprecated: --wait-s.")] = None,
) -> None:
    """Print a finished job's result as JSON. Exits 1 if it failed, is unknown, or is not done in time."""
    wait_s = renamed_option("--timeout", timeout, "--wait-s", wait_s)
    settings = cli_settings()
    value: Any = with_client(settings, lambda client: client.job(job_id, queue=queue).result(timeout_s=wait_s or 0.0))
    print_json(value)


@app.command()
def abort(
    job_id: str,
    queue: Queue = None,
    wait_s: Annotated[float | None, typer.Option(min=0, help="Seconds to wait for a running job to stop.")] = None,
    wait: Annotated[float | None, typer.Option(min=0, hidden=True, help="Deprecated: --wait-s.")] = None,
) -> None:
    """Abort a job: a queued job is removed at once; a running one is cancelled by its worker within about
    JOBQ_ABORT_CHECK_S. An aborted job is never retried. Aborting an aborted job again is fine; exits 1 if
    the job is unknown or finished otherwise."""
    wait_s = renamed_option("--wait", wait, "--wait-s", wait_s)
    settings = cli_settings()
    after = with_client(settings, lambda client: client.abort(job_id, queue=queue, wait_s=wait_s or None))
    messages = {
        JobStatus.ABORTED: "aborted",
        JobStatus.IN_PROGRESS: "abort requested; the worker running it will cancel it shortly",
        JobStatus.NOT_FOUND: "no such job",
    }
    typer.echo(f"{job_id}: {messages.get(after, f'already finished ({after.value}); nothing to abort')}")
    if after not in (JobStatus.ABORTED, JobStatus.IN_PROGRESS):
        raise typer.Exit(1)
