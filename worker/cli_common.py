"""What the ``jobq`` commands share: settings at the edge, error-to-exit-code mapping, output helpers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

import orjson
import typer
from redis.exceptions import RedisError
from rich.console import Console

from .client import Client
from .errors import JobqError, SettingsError, TaskDefinitionError
from .settings import JobqSettings, load_settings

T = TypeVar("T")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Configuration and usage errors exit 2; runtime errors (Redis, jobs) exit 1; both on stderr."""
    try:
        yield
    except (SettingsError, TaskDefinitionError) as exc:
        fail(str(exc), 2)
    except (JobqError, RedisError, OSError) as exc:
        fail(f"{type(exc).__name__}: {exc}", 1)


def cli_settings(**overrides: Any) -> JobqSettings:
    """The settings from the environment, or exit 2 naming what is wrong."""
    with errors_to_exit_codes():
        return load_settings(**overrides)


def run(fn: Callable[[], T]) -> T:
    """Call ``fn`` with jobq's errors mapped to exit codes."""
    with errors_to_exit_codes():
        return fn()


def with_client(settings: JobqSettings, use: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``use(client)`` on a fresh event loop, closing the client afterwards."""

    async def main() -> T:
        async with Client(settings) as client:
            return await use(client)

    return run(lambda: asyncio.run(main()))


def parse_when(text: str | None, option: str, *, now: datetime | None = None) -> int | None:
    """Milliseconds since the epoch from an ISO 8601 time or a duration ago (``90s``, ``30m``, ``2h``, ``7d``)."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match:
        ago = timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
        return round(((now or datetime.now(UTC)) - ago).timestamp() * 1000)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} takes an ISO 8601 time (2026-11-22T10:00:00+00:00) or a duration ago (30m, 2h, 7d)", 2)
    return round((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def print_json(value: Any) -> None:
    """One JSON document on stdout (datetimes as ISO 8601)."""
    typer.echo(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode())


def shorten(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
