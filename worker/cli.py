"""The ``jobq`` command line (also ``python -m worker``).

Exit codes: 0 success, 1 runtime failure (Redis unreachable, a failed or unknown job, demo outcome
wrong), 2 bad configuration or usage. Errors go to stderr.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import cli_dlq, cli_jobs
from .cli_common import cli_settings, fail, run
from .settings import JobqSettings, env_name, settings_table_markdown

app = typer.Typer(
    name="jobq",
    help="jobq: a distributed async job-queue worker on arq and Redis. Settings come from JOBQ_* "
    "environment variables; `jobq settings` shows them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_jobs.app, name="job")
app.add_typer(cli_dlq.app, name="dlq")


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty instead of waiting for jobs.")] = False,
) -> None:
    """Run a worker process: load the task modules, then run jobs until SIGTERM or SIGINT.

    Running jobs are cancelled on the signal and go back to the queue for another worker.
    """
    from .observability import configure_logging, init_sentry
    from .runner import run_worker

    settings = cli_settings()
    configure_logging(settings)
    init_sentry(settings)  # before the arq worker exists, so its integration wraps the tasks
    run(lambda: asyncio.run(run_worker(settings, burst=burst)))


@app.command()
def demo(
    jobs: Annotated[int, typer.Option(min=1, max=10_000, help="Text jobs in the batch.")] = 24,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Worker processes to start.")] = 2,
    embedded: Annotated[
        str,
        typer.Option(help="Embedded Redis when JOBQ_REDIS_URL is unset: auto, redis-server or fakeredis."),
    ] = "auto",
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the batch.")] = 60.0,
) -> None:
    """Run workers and a producer through a real batch of jobs, and print what happened.

    Without JOBQ_REDIS_URL it starts an embedded Redis (redis-server when installed, otherwise
    fakeredis) and stops everything it started before exiting. On a configured Redis it uses a queue
    and job ids of its own, and its results expire after JOBQ_RESULT_TTL_S.
    """
    from .demo import DemoOptions, run_demo

    if embedded not in {"auto", "redis-server", "fakeredis"}:
        fail(f"--embedded must be auto, redis-server or fakeredis, got {embedded!r}", 2)
    options = DemoOptions(jobs=jobs, workers=workers, embedded=embedded, timeout_s=timeout)  # type: ignore[arg-type]
    ok = run(lambda: run_demo(options))
    raise typer.Exit(0 if ok else 1)


@app.command("settings")
def show_settings(
    markdown: Annotated[bool, typer.Option(help="Print the configuration reference table instead.")] = False,
) -> None:
    """Show the effective settings (secrets hidden) and the variable that sets each one."""
    if markdown:
        typer.echo(settings_table_markdown())
        return
    settings = cli_settings()
    table = Table("variable", "value", title="jobq settings")
    for name in JobqSettings.model_fields:
        table.add_row(env_name(name), str(getattr(settings, name)))
    Console().print(table)


@app.command()
def tasks() -> None:
    """List the tasks found in JOBQ_TASK_MODULES, with their payload fields and policies."""
    from .registry import Registry

    settings = cli_settings()
    registry = run(lambda: Registry.from_modules(settings.task_modules))
    table = Table("task", "payload", "timeout", "tries", "concurrency", title="jobq tasks")
    for t in sorted(registry, key=lambda t: t.name):
        fields = ", ".join(t.payload_model.model_fields)
        table.add_row(
            t.name,
            f"{t.payload_model.__name__}({fields})",
            f"{t.timeout_s or settings.job_timeout_s:g}s",
            str(t.retry_policy(settings.retry_policy).max_tries),
            str(t.concurrency or "-"),
        )
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``jobq`` console script."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="jobq")
