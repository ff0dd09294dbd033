"""Every Lua script jobq runs: one ``worker/protocol/lua/<name>.lua`` file each, loaded once, registered once
per connection.

A script file starts with a header naming each of its KEYS and ARGV entries and what it returns, binds them
to named locals, and pulls shared functions in with ``--- @include "<name>"`` (from ``lua/includes/``,
each at most once per script); nothing is templated from Python. Every key a script touches comes from its
KEYS, except the keys the claim builds from the ids it finds in the queue (its header says why).

:class:`Scripts` is the one way jobq calls them (``Scripts.of(redis)["claim"](keys, args)``), and the seam
tests use to count calls (:attr:`BoundScript.calls`) or intercept them (:meth:`Scripts.intercept`).
"""

from __future__ import annotations

import contextlib
import functools
import re
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib.resources import files
from typing import Any, ClassVar, Literal, get_args

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

__all__ = [
    "SCRIPT_NAMES",
    "BoundScript",
    "Interceptor",
    "ScriptCall",
    "ScriptName",
    "Scripts",
    "include_source",
    "source",
]

ScriptName = Literal[
    "abort", "claim", "dead_letter", "dead_letter_trim", "enqueue", "enqueue_after", "enqueue_dedup", "finish_many",
    "give_back", "limit_acquire", "limit_release", "limit_renew", "park", "pause", "permission_probe",
    "rate_acquire", "release", "renew_leases", "retry", "unpark", "workflow_activate", "workflow_end",
    "workflow_stage",
]  # fmt: skip
#: Every script, by the name of its file.
SCRIPT_NAMES: tuple[ScriptName, ...] = get_args(ScriptName)

#: One call of a script: its KEYS, then its ARGV; returns the script's reply.
ScriptCall = Callable[[Sequence[Any], Sequence[Any]], Awaitable[Any]]
#: Stands in for a script's calls while installed: gets the real call, the KEYS and the ARGV.
Interceptor = Callable[[ScriptCall, Sequence[Any], Sequence[Any]], Awaitable[Any]]

_INCLUDE = re.compile(r'^--- @include "([a-z_]+)"[ \t]*$', re.MULTILINE)
_LUA = files("worker.protocol").joinpath("lua")


def _read(*parts: str) -> str:
    path = _LUA.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"jobq's Lua file {'/'.join(parts)!r} is missing from worker/protocol/lua/")
    return path.read_text(encoding="utf-8")


@functools.cache
def include_source(name: str) -> str:
    """The text of ``lua/includes/<name>.lua`` as it is (its own includes unresolved)."""
    return _read("includes", f"{name}.lua")


@functools.cache
def source(name: ScriptName) -> str:
    """The text Redis runs for script ``name``: its file with every ``--- @include`` replaced, once each."""
    included: set[str] = set()

    def resolve(text: str) -> str:
        return _INCLUDE.sub(include, text)

    def include(found: re.Match[str]) -> str:
        name = found.group(1)
        if name in included:
            return ""
        included.add(name)
        return resolve(include_source(name)).rstrip("\n")

    return resolve(_read(f"{name}.lua"))


class BoundScript:
    """One script on one connection: call it with ``(keys, args)``."""

    __slots__ = ("_interceptor", "_script", "calls", "name")

    def __init__(self, name: ScriptName, script: AsyncScript) -> None:
        self.name = name
        self.calls = 0  #: how many times it was called on this connection (for tests and debugging)
        self._script = script
        self._interceptor: Interceptor | None = None

    @property
    def sha(self) -> str:
        """The SHA-1 Redis knows the script by (``EVALSHA``)."""
        return str(self._script.sha)

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Awaitable[Any]:
        self.calls += 1
        if self._interceptor is None:
            return self._script(keys=keys, args=args)
        return self._interceptor(self._send, keys, args)

    def _send(self, keys: Sequence[Any], args: Sequence[Any]) -> Awaitable[Any]:
        return self._script(keys=keys, args=args)


class Scripts:
    """The scripts of one Redis connection, each registered once (``EVALSHA``, loaded again on ``NOSCRIPT``).

    :meth:`of` gives every component on the same connection the same registry (held weakly: it goes with
    the connection), so a test counts or intercepts a script wherever it is called from.
    """

    _by_connection: ClassVar[weakref.WeakKeyDictionary[Redis, Scripts]] = weakref.WeakKeyDictionary()

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._bound: dict[str, BoundScript] = {}

    @classmethod
    def of(cls, redis: Redis) -> Scripts:
        """The registry of ``redis`` (created on first use)."""
        scripts = cls._by_connection.get(redis)
        if scripts is None:
            scripts = cls._by_connection[redis] = cls(redis)
        return scripts

    def __getitem__(self, name: ScriptName) -> BoundScript:
        bound = self._bound.get(name)
        if bound is None:
            bound = self._bound[name] = BoundScript(name, self._redis.register_script(source(name)))
        return bound

    @contextlib.contextmanager
    def intercept(self, name: ScriptName, interceptor: Interceptor) -> Iterator[BoundScript]:
        """Route every call of ``name`` on this connection through ``interceptor`` inside the block; one
        installed already is set aside meanwhile and restored after."""
        bound = self[name]
        outer, bound._interceptor = bound._interceptor, interceptor
        try:
            yield bound
        finally:
            bound._interceptor = outer
