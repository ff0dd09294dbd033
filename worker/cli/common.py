"""What the ``jobq`` commands share: settings at the edge, error-to-exit-code mapping, output helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import orjson
import typer

from worker.errors import (
    InvalidJobOptions,
    InvalidPayload,
    JobqError,
    SettingsError,
    TaskDefinitionError,
    UnknownTaskError,
)
from worker.queue_names import queue_name_problem
from worker.taskdef.modules import use_project_folder
from worker.timeparse import parse_when_ms

# The CLI loads only typer and jobq's light base modules when it starts (`jobq --help`, `jobq --version`);
# settings, redis-py, the client and rich are imported by the commands that use them.
if TYPE_CHECKING:
    from rich.console import Console

    from worker.client.producer import Client
    from worker.settings import JobqSettings

T = TypeVar("T")


# rich is imported when a command prints, not with the CLI: ``jobq worker`` does not load it.
def err_console() -> Console:
    """A console on stderr that keeps an error on one greppable line."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> Console:
    """A console on stdout for the commands' tables."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err_console().print(f"error: {message}", markup=False)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Configuration and usage errors (bad settings, payloads, options) exit 2; runtime errors (Redis, failed
    jobs) exit 1; both on stderr."""
    try:
        yield
    except (SettingsError, TaskDefinitionError, InvalidPayload, InvalidJobOptions, UnknownTaskError) as exc:
        fail(str(exc), 2)
    except (JobqError, OSError) as exc:
        fail(f"{type(exc).__name__}: {exc}", 1)
    except Exception as exc:
        from redis.exceptions import RedisError  # loaded already when a command reached Redis

        if not isinstance(exc, RedisError):
            raise
        fail(f"{type(exc).__name__}: {exc}", 1)


def queue_option(value: str | None) -> str | None:
    """Typer callback of the ``--queue`` options: refuse a name jobq may not use as a queue (exit 2)."""
    problem = None if value is None else queue_name_problem(value)
    if problem is not None:
        raise typer.BadParameter(f"the queue name {problem}")
    return value


def renamed_option(old: str, old_value: T | None, new: str, new_value: T | None) -> T | None:
    """The value of option ``new``, also given as its hidden deprecated alias ``old`` (which warns on stderr)."""
    if old_value is None:
        return new_value
    if new_value is not None:
        fail(f"{old} is the deprecated spelling of {new}; give {new} only", 2)
    err_console().print(f"warning: {old} is deprecated, use {new}; {old} goes away in jobq 0.3", markup=False)
    return old_value


def cli_settings(**overrides: Any) -> JobqSettings:
    """The settings from the environment, or exit 2 naming what is wrong."""
    from worker.settings import load_settings

    with errors_to_exit_codes():
        return load_settings(**overrides)


#: The task modules a command loads, as arguments (``jobq worker myapp.jobs``); JOBQ_TASK_MODULES otherwise.
Modules = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[MODULE]...",
        help="Task modules or packages to load, e.g. myapp.jobs (default: JOBQ_TASK_MODULES). jobq's built-in "
        "tasks load only when named: tasks (all of them) or tasks.webhooks, tasks.maintenance...",
        show_default=False,
    ),
]
#: The same as an option, for commands whose arguments are something else (``jobq enqueue``).
ModuleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--module", "-m", help="A task module to load (repeatable; default: JOBQ_TASK_MODULES).", show_default=False
    ),
]
NoCwd = Annotated[
    bool,
    typer.Option(
        "--no-cwd", help="Do not add the current directory to the import path (default: JOBQ_IMPORT_CWD=true)."
    ),
]


def task_settings(modules: list[str] | None, no_cwd: bool = False, **overrides: Any) -> JobqSettings:
    """The settings of a command that loads task modules: ``modules`` replace JOBQ_TASK_MODULES (and each
    given override its setting), and the current directory (the user's project) becomes importable unless
    ``--no-cwd`` or JOBQ_IMPORT_CWD=false.

    Exits 2 when no task module is named at all.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = cli_settings(**({"task_modules": modules} if modules else {}), **given)
    if not settings.task_modules:
        fail(
            "no task modules: name them (jobq worker myapp.jobs) or set JOBQ_TASK_MODULES=myapp.jobs; "
            "jobq's built-in tasks load when named (tasks, or tasks.webhooks, tasks.maintenance...)",
            2,
        )
    if settings.import_cwd and not no_cwd:
        use_project_folder()
    return settings


def run(fn: Callable[[], T]) -> T:
    """Call ``fn`` with jobq's errors mapped to exit codes."""
    with errors_to_exit_codes():
        return fn()


def make_client(settings: JobqSettings) -> Client:
    """The client every command uses (the seam tests replace to run the commands on fakeredis)."""
    from worker.client.producer import Client

    return Client(settings)


def with_client(settings: JobqSettings, use: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``use(client)`` on a fresh event loop, closing the client afterwards."""
    import asyncio

    from redis.exceptions import RedisError

    from worker.protocol.permissions import permission_error, redis_user

    async def main() -> T:
        async with make_client(settings) as client:
            try:
                return await use(client)
            except RedisError as exc:  # a refused permission is named with its fix, and exits 2
                refusal = permission_error(exc, user=redis_user(settings), queue=settings.queue_name)
                if refusal is None:
                    raise
                raise refusal from None

    return run(lambda: asyncio.run(main()))


def parse_when(text: str | None, option: str) -> int | None:
    """Milliseconds since the epoch from ``text`` (see :func:`worker.timeparse.parse_when_ms`); exits 2 if bad."""
    if text is None:
        return None
    try:
        return parse_when_ms(text)
    except ValueError as exc:
        fail(f"{option}: {exc}", 2)


def print_json(value: Any) -> None:
    """One JSON document on stdout (datetimes as ISO 8601)."""
    typer.echo(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode())


def shorten(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
