"""``jobq enqueue``, ``jobq stats`` and ``jobq api``: enqueue from a shell, watch the queues, serve the API."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from worker.cli.common import (
    ModuleOption,
    Modules,
    NoCwd,
    cli_settings,
    err_console,
    fail,
    out_console,
    print_json,
    queue_option,
    renamed_option,
    run,
    task_settings,
    with_client,
)
from worker.errors import JobFailed, ResultTimeout

if TYPE_CHECKING:
    from rich.table import Table

    from worker.client.producer import Client
    from worker.client.stats import QueueStats
    from worker.settings import JobqSettings


def enqueue(
    task: Annotated[str, typer.Argument(help="Task name (see `jobq tasks`).")],
    json: Annotated[str, typer.Option("--json", help="The payload as a JSON object.")] = "{}",
    job_id: Annotated[str | None, typer.Option(help="Idempotency key: enqueueing it again creates nothing.")] = None,
    defer_by: Annotated[float | None, typer.Option(min=0, help="Seconds before the job may run.")] = None,
    timeout_s: Annotated[float | None, typer.Option(min=0.001, help="Time limit of each try, in seconds.")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue (default: JOBQ_QUEUE_NAME).", callback=queue_option)] = None,
    priority: Annotated[
        int | None, typer.Option(min=0, max=255, help="Priority, 0-255: higher runs first (default: the task's).")
    ] = None,
    dedup_key: Annotated[
        str | None, typer.Option(help="For a task with a dedup mode: deduplicate by this key (not the computed one).")
    ] = None,
    wait_s: Annotated[float | None, typer.Option(min=0, help="Seconds to wait for the result and print it.")] = None,
    timeout: Annotated[float | None, typer.Option(min=0.001, hidden=True, help="Deprecated: --timeout-s.")] = None,
    wait: Annotated[float | None, typer.Option(min=0, hidden=True, help="Deprecated: --wait-s.")] = None,
    module: ModuleOption = None,
    no_cwd: NoCwd = False,
) -> None:
    """Validate and enqueue one job; print its id (and, with --wait-s, its result) as JSON.

    Exits 2 for an invalid payload or option (nothing is written), 1 if the awaited job failed.
    """
    timeout_s = renamed_option("--timeout", timeout, "--timeout-s", timeout_s)
    wait_s = renamed_option("--wait", wait, "--wait-s", wait_s)
    settings = task_settings(module, no_cwd)
    try:
        payload = orjson.loads(json)
    except orjson.JSONDecodeError as exc:
        fail(f"--json is not valid JSON: {exc}", 2)

    async def go(client: Client) -> dict[str, Any]:
        handle = await client.enqueue(
            task,
            payload,
            job_id=job_id,
            defer_by=defer_by,
            timeout_s=timeout_s,
            queue=queue,
            priority=priority,
            dedup_key=dedup_key,
        )
        answer: dict[str, Any] = {"job_id": handle.job_id, "queue": handle.queue_name, "created": handle.created}
        if wait_s:
            try:
                value = await handle.result(timeout_s=wait_s)
            except (JobFailed, ResultTimeout) as exc:  # the job exists: say which one before the error
                answer["status"] = "failed" if isinstance(exc, JobFailed) else "not finished"
                answer["error"] = exc.to_dict() if isinstance(exc, JobFailed) else str(exc)
                return answer
            answer["result"] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
        return answer

    answer = with_client(settings, go)
    print_json(answer)
    if "error" in answer:
        raise typer.Exit(1)


def _table(all_stats: list[QueueStats]) -> Table:
    from rich.table import Table

    table = Table("queue", "ready", "waiting", "deferred", "running", "oldest ready", "dead letters", "workers",
                  "paused", title=f"jobq queues at {time.strftime('%H:%M:%S')}")  # fmt: skip
    for s in all_stats:
        table.add_row(
            s.queue, str(s.ready), str(s.waiting), str(s.deferred), str(s.running), f"{s.oldest_ready_age_s:.1f}s",
            str(s.dead_letters), str(s.workers), "yes" if s.paused else "",
        )  # fmt: skip
    return table


def stats(
    queue: Annotated[
        str | None, typer.Option(help="Only this queue (default: every known queue).", callback=queue_option)
    ] = None,
    watch: Annotated[bool, typer.Option(help="Refresh the table until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes with --watch.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show each queue: ready, waiting (due, parked until a concurrency slot frees), deferred and running jobs,
    the oldest ready job's age, dead letters, workers, and whether it is paused (`jobq queue pause`)."""
    import asyncio

    settings = cli_settings()

    from worker.client.stats import known_queues, queue_stats

    async def snapshot(client: Client) -> list[QueueStats]:
        names = [queue] if queue else await known_queues(client.redis, settings.queue_name, client.registry.queues())
        return [await queue_stats(client.redis, name) for name in names]

    if not watch:
        found = with_client(settings, snapshot)
        if as_json:
            print_json([s.to_dict() for s in found])
        else:
            out_console().print(_table(found))
        return

    async def live(client: Client) -> None:
        from rich.live import Live

        with Live(_table(await snapshot(client)), console=out_console(), refresh_per_second=4) as display:
            while True:
                await asyncio.sleep(interval)
                display.update(_table(await snapshot(client)))

    with contextlib.suppress(KeyboardInterrupt):
        with_client(settings, live)


def api(
    modules: Modules = None,
    dev: Annotated[bool, typer.Option(help="Allow running without JOBQ_API_TOKEN (no authentication!).")] = False,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: JOBQ_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: JOBQ_API_PORT).")] = None,
    no_cwd: NoCwd = False,
) -> None:
    """Serve the HTTP API and the dashboard until SIGTERM or SIGINT.

    Refuses to start without JOBQ_API_TOKEN unless --dev is given.
    """
    settings = task_settings(modules, no_cwd)
    if settings.api_token is None and not dev:
        fail("JOBQ_API_TOKEN is not set: refusing to serve an unauthenticated API (use --dev on a laptop)", 2)
    if settings.api_token is None:
        err_console().print("warning: --dev: the API accepts requests without a token", markup=False)
    from worker.observability.logs import configure_logging

    configure_logging(settings)
    import asyncio

    run(lambda: asyncio.run(_serve(settings, host or settings.api_host, port or settings.api_port)))


async def _serve(settings: JobqSettings, host: str, port: int) -> None:
    import asyncio
    import signal

    from worker.http.api import create_app
    from worker.http.server import ApiServer
    from worker.observability.metrics import Metrics
    from worker.protocol.connection import wait_for_redis
    from worker.taskdef.registry import TaskRegistry

    metrics = Metrics()
    from worker.client.producer import Client

    async with Client(settings, registry=TaskRegistry.from_modules(settings.task_modules), metrics=metrics) as client:
        await wait_for_redis(client.redis)
        token = settings.api_token.get_secret_value() if settings.api_token else None
        app = create_app(client, metrics, token=token)
        read_timeout_s, max_connections = settings.api_read_timeout_s, settings.api_max_connections
        async with ApiServer(app, host, port, read_timeout_s=read_timeout_s, max_connections=max_connections) as server:
            shown = f"http://{host}:{server.port}"
            out_console().print(f"jobq API on {shown} (dashboard: /dashboard, OpenAPI: /openapi.json)")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
