"""``jobq queue``: pause, resume and look at one queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli.common import cli_settings, fail, print_json, queue_option, with_client

if TYPE_CHECKING:
    from worker.client.pause import QueuePause
    from worker.client.producer import Client
    from worker.client.stats import QueueStats

app = typer.Typer(
    help="Pause, resume and inspect a queue. A paused queue still takes enqueues; no worker claims from it "
    "until it is resumed (running jobs finish). The pause is kept in Redis, across worker restarts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Queue = Annotated[
    str | None,
    typer.Argument(
        help="The queue (default: JOBQ_QUEUE_NAME).", callback=queue_option, show_default=False, metavar="QUEUE"
    ),
]
#: The longest ``--by`` (what :func:`worker.client.pause.pause_queue` records at most).
MAX_BY_LEN = 200


def default_by() -> str:
    """Who pauses from the command line, unless ``--by`` says: ``user@host`` (the host alone without a user)."""
    import getpass
    import socket

    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name: no USER variable and no passwd entry (containers)
        return host
    return f"{user}@{host}"


def _since(pause: QueuePause) -> str:
    """``since <time> by <who>`` of a pause (without ``by`` when it records no one)."""
    shown = f"since {pause.since.isoformat(timespec='seconds')}"
    return f"{shown} by {pause.by}" if pause.by else shown


@app.command()
def pause(
    queue: Queue = None,
    by: Annotated[
        str | None,
        typer.Option(help="Who or what pauses, recorded with the pause (default: user@host; at most 200 characters)."),
    ] = None,
) -> None:
    """Pause a queue: no worker claims its jobs until it is resumed.

    Enqueues still land and running jobs finish. The pause lasts, across worker restarts, until `jobq queue
    resume`. Exits 0 also when the queue was paused already (that pause is kept, with its time and --by).
    """
    settings = cli_settings()
    name = queue or settings.queue_name
    who = default_by()[:MAX_BY_LEN] if by is None else by
    if len(who) > MAX_BY_LEN:
        fail(f"--by must be at most {MAX_BY_LEN} characters, got {len(who)}", 2)

    async def go(client: Client) -> tuple[bool, QueuePause | None]:
        changed = await client.pause(name, by=who)
        return changed, None if changed else await client.pause_of(name)

    changed, earlier = with_client(settings, go)
    if changed:
        typer.echo(f"paused queue {name!r}")
    elif earlier is None:  # resumed between the two calls
        typer.echo(f"queue {name!r} was paused already")
    else:
        typer.echo(f"queue {name!r} was paused already ({_since(earlier)})")


@app.command()
def resume(queue: Queue = None) -> None:
    """Resume a paused queue: an idle worker claims from it at once.

    Exits 0 also when the queue was not paused.
    """
    settings = cli_settings()
    name = queue or settings.queue_name
    changed = with_client(settings, lambda client: client.resume(name))
    typer.echo(f"resumed queue {name!r}" if changed else f"queue {name!r} was not paused")


@app.command()
def status(
    queue: Queue = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Show whether a queue is paused (since when, by whom), its job counts, and the limits jobs wait on.

    The counts are those of `jobq stats`: ready, waiting (due, parked until a concurrency or rate slot frees),
    deferred and running jobs, dead letters and live workers; then each limit with jobs waiting on it.
    """
    from worker.client.stats import GateWait, gate_waits, queue_stats

    settings = cli_settings()
    name = queue or settings.queue_name

    async def go(client: Client) -> tuple[QueuePause | None, QueueStats, list[GateWait]]:
        return await client.pause_of(name), await queue_stats(client.redis, name), await gate_waits(client.redis, name)

    paused, stats, gates = with_client(settings, go)
    if as_json:
        data: dict[str, Any] = {
            "queue": name,
            "paused": paused is not None,
            "paused_since": None if paused is None else paused.since.isoformat(),
            "paused_by": None if paused is None else paused.by,
            "stats": stats.to_dict(),
            "waiting_on": [{"gate": g.gate, "waiting": g.waiting, "recheck_at": g.recheck_at} for g in gates],
        }
        print_json(data)
        return
    typer.echo(f"queue {name!r} is paused ({_since(paused)})" if paused else f"queue {name!r} is not paused")
    typer.echo(
        f"ready {stats.ready}, waiting {stats.waiting}, deferred {stats.deferred}, running {stats.running}, "
        f"dead letters {stats.dead_letters}, workers {stats.workers}"
    )
    for g in gates:
        typer.echo(f"  {g.waiting} waiting on {g.gate}")
