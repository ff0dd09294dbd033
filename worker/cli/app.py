"""The typer app of the ``jobq`` command line; :func:`worker.cli.main` is the entry point.

Exit codes: 0 success, 1 runtime failure (Redis unreachable, a failed or unknown job, demo outcome
wrong), 2 bad configuration or usage. Errors go to stderr.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

# rich (tables) and the heavy parts of each command are imported by the commands that use them, so
# `jobq worker` loads neither rich nor the producer-only modules.
import worker.cli.dlq as cli_dlq
import worker.cli.jobs as cli_jobs
import worker.cli.ops as cli_ops
import worker.cli.queues as cli_queues
import worker.cli.workflows as cli_workflows
from worker.cli.common import Modules, NoCwd, cli_settings, fail, run, task_settings, with_client

if TYPE_CHECKING:
    from worker.client.producer import Client

app = typer.Typer(
    name="jobq",
    help="jobq: a distributed async job-queue worker on arq and Redis. Settings come from JOBQ_* "
    "environment variables; `jobq settings` shows them.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    # Plain help, as click writes it: rendering it with rich doubles the time `jobq --help` takes (0.45 s here).
    rich_markup_mode=None,
)


def jobq_version() -> str:
    """The installed distribution's version (``pip show jobq``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jobq")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"jobq {jobq_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print jobq's version and exit.")
    ] = False,
) -> None:
    pass


app.add_typer(cli_jobs.app, name="job")
app.add_typer(cli_dlq.app, name="dlq")
app.add_typer(cli_queues.app, name="queue")
app.add_typer(cli_workflows.app, name="workflow")
app.command()(cli_ops.enqueue)
app.command()(cli_ops.stats)
app.command()(cli_ops.api)


@app.command()
def worker(
    modules: Modules = None,
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty instead of waiting for jobs.")] = False,
    processes: Annotated[
        int, typer.Option(min=1, max=256, help="Run this many worker processes and restart any that dies.")
    ] = 1,
    queues: Annotated[
        str | None,
        typer.Option(
            help="Serve these queues (JOBQ_QUEUES): high,default,low in strict order, or high=5,default=3,low=1 "
            "sharing the JOBQ_MAX_JOBS slots by weight. Default: JOBQ_QUEUE_NAME only."
        ),
    ] = None,
    no_cwd: NoCwd = False,
) -> None:
    """Run a worker: load the task modules (jobq worker myapp.jobs), then run jobs until SIGTERM or SIGINT.

    On the signal it stops taking jobs, lets running ones finish for JOBQ_SHUTDOWN_GRACE_S, returns
    the rest to the queue (uncharged) and exits 0; a second signal returns them at once and exits hard (128 +
    signal) if the stop is not over 10s later; a third exits hard at once.
    """
    from worker.observability.logs import configure_logging, init_sentry

    settings = task_settings(modules, no_cwd, queues=queues)
    configure_logging(settings)
    if processes > 1:
        from worker.process.supervisor import Supervisor

        # The children read their settings from the environment, as this process did.
        children_env = {
            "JOBQ_TASK_MODULES": ",".join(settings.task_modules),
            "JOBQ_IMPORT_CWD": "false" if no_cwd else str(settings.import_cwd).lower(),
            **({"JOBQ_QUEUES": settings.queues} if settings.queues else {}),
        }

        if burst:
            fail("--burst and --processes do not mix: run one burst worker per process", 2)
        raise typer.Exit(Supervisor(processes, base_port=settings.http_port, env=children_env).run())
    import worker.process.eventloop as eventloop
    from worker.engine.runner import run_worker

    init_sentry(settings)  # before the worker exists
    run(lambda: eventloop.run(run_worker(settings, burst=burst)))  # on uvloop when installed


@app.command()
def check(
    worker_id: Annotated[str | None, typer.Option(help="Check this worker (host:pid) instead of this host's.")] = None,
    max_age: Annotated[
        float | None, typer.Option(min=0, help="Seconds a heartbeat may be old (default: 3 x JOBQ_HEALTH_INTERVAL_S).")
    ] = None,
) -> None:
    """Exit 0 when this host's workers on JOBQ_QUEUE_NAME (or --worker-id) are healthy: beating, connected
    to Redis and not draining; exit 1 otherwise. Meant for liveness probes and Docker HEALTHCHECK.

    Under `jobq worker --processes N` every one of the N workers must be healthy: one whose heartbeat ran
    out (cut off from Redis, hung, restarting) fails the check by name."""
    import socket

    from worker.engine.health import read_health

    settings = cli_settings()
    limit = max_age if max_age is not None else 3 * settings.health_interval_s
    host = None if worker_id else socket.gethostname()
    reports = with_client(
        settings,
        lambda client: read_health(
            client.redis, worker_id=worker_id, host=host, max_age_s=limit, queue=settings.queue_name
        ),
    )
    if not reports:
        fail(f"no worker heartbeat found for {worker_id or 'host ' + str(host)}")
    for r in reports:
        typer.echo(r.describe())
    if not all(r.healthy for r in reports):
        raise typer.Exit(1)


cron_app = typer.Typer(help="Schedules declared in the task modules.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(cron_app, name="cron")


@cron_app.command("list")
def cron_list(modules: Modules = None, no_cwd: NoCwd = False) -> None:
    """List the schedules found in the task modules (after JOBQ_CRON), with their last and next runs."""
    from worker.engine.scheduler import CronScheduler
    from worker.protocol.connection import codec_for
    from worker.taskdef.cron import effective_schedules, schedules_from_modules

    settings = task_settings(modules, no_cwd)
    declared = run(lambda: schedules_from_modules(settings.task_modules))
    active = {a.schedule.name: a for a in run(lambda: effective_schedules(declared, settings.cron))}

    async def last_ticks(client: Client) -> dict[str, str]:
        scheduler = CronScheduler(
            client.redis, codec_for(settings), settings.queue_name, list(active.values()),
            misfire_grace_s=settings.cron_misfire_grace_s, lookahead_s=0, job_expires_s=settings.job_expires_s,
        )  # fmt: skip
        found = {}
        for name in active:
            tick = await scheduler.last_tick(name)
            found[name] = tick.isoformat(timespec="seconds") if tick else "-"
        return found

    last = with_client(settings, last_ticks) if active else {}
    now = datetime.now(UTC)
    from rich.console import Console
    from rich.table import Table

    table = Table("schedule", "task", "when", "misfire", "last tick", "next run", title="jobq schedules")
    for s in sorted(declared, key=lambda s: s.name):
        a = active.get(s.name)
        when = a.timing.describe() if a else "off (JOBQ_CRON)"
        nxt = a.timing.next_after(now).isoformat(timespec="seconds") if a else "-"
        table.add_row(s.name, s.task.name, when, s.misfire, last.get(s.name, "-"), nxt)
    Console().print(table)


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
    from worker.demo.run import DemoOptions, run_demo

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
        from worker.settings_table import settings_table_markdown

        typer.echo(settings_table_markdown())
        return
    from rich.console import Console
    from rich.table import Table

    settings = cli_settings()
    table = Table("variable", "value", title="jobq settings")
    from worker.settings import JobqSettings, env_name

    for name in JobqSettings.model_fields:
        table.add_row(env_name(name), str(getattr(settings, name)))
    Console().print(table)


@app.command()
def tasks(modules: Modules = None, no_cwd: NoCwd = False) -> None:
    """List the tasks found in the task modules, with their payload fields and policies."""
    from rich.console import Console
    from rich.table import Table

    from worker.taskdef.registry import TaskRegistry

    settings = task_settings(modules, no_cwd)
    registry = run(lambda: TaskRegistry.from_modules(settings.task_modules))
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
