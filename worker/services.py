"""What a worker shares with all its jobs: the settings, a producer client, and resources.

A :class:`Resource` is something costly that every job of a worker should share, such as one HTTP
session: an async generator that gets the settings, yields the value, and cleans up after the
``yield``. Resources declared at module level in the task modules are opened when the worker starts;
any other is opened the first time a task asks for it (``await ctx.resource(http_session)``). All
are closed when the worker stops::

    @resource
    async def http_session(settings: JobqSettings) -> AsyncIterator[aiohttp.ClientSession]:
        async with aiohttp.ClientSession() as session:
            yield session
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from .registry import import_modules
from .settings import JobqSettings

if TYPE_CHECKING:
    from .client import Client

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Resource(Generic[T]):
    """A value shared by the jobs of one worker, opened on first use and closed at shutdown."""

    name: str
    factory: Callable[[JobqSettings], contextlib.AbstractAsyncContextManager[T]] = field(repr=False)


def resource(fn: Callable[[JobqSettings], AsyncIterator[T]]) -> Resource[T]:
    """Turn an async generator ``(settings) -> yields value`` into a :class:`Resource`."""
    return Resource(fn.__name__, contextlib.asynccontextmanager(fn))


def resources_from_modules(modules: Iterable[str]) -> list[Resource[Any]]:
    """The resources declared at module level in ``modules`` (the task modules)."""
    found: dict[int, Resource[Any]] = {}
    for module in import_modules(modules):
        for value in vars(module).values():
            if isinstance(value, Resource):
                found.setdefault(id(value), value)
    return list(found.values())


class Resources:
    """The resources one worker has opened; each is opened once, even when many jobs ask at once."""

    def __init__(self, settings: JobqSettings) -> None:
        self._settings = settings
        self._values: dict[Resource[Any], Any] = {}
        self._lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()

    async def get(self, wanted: Resource[T]) -> T:
        """The value of ``wanted``, opening it on first use."""
        if wanted in self._values:
            return cast(T, self._values[wanted])
        async with self._lock:
            if wanted not in self._values:
                self._values[wanted] = await self._stack.enter_async_context(wanted.factory(self._settings))
            return cast(T, self._values[wanted])

    def is_open(self, wanted: Resource[Any]) -> bool:
        """Whether ``wanted`` has been opened (and not closed since)."""
        return wanted in self._values

    async def close(self) -> None:
        """Close every opened resource, last opened first."""
        self._values.clear()
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()


@dataclass(frozen=True, eq=False)
class WorkerServices:
    """Handed to every job through its context: settings, a client for enqueueing, resources."""

    settings: JobqSettings
    client: Client
    resources: Resources
