"""Resources a task module declares: values every job of a worker shares, opened once.

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

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from worker.settings import JobqSettings
from worker.taskdef.modules import import_modules

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
