"""Enforcing the concurrency limits tasks declare: a fleet-wide :class:`~worker.taskdef.limits.Limit`, and a
task's per-worker ``concurrency``.

A fleet-wide limit is a Redis sorted set per key whose members are the holders (one per running try) scored
by the expiry of their lease. A holder renews its lease every third of the lease while its job runs; the
slots of a crashed worker are not renewed and free themselves when their lease runs out. Lease times come
from the Redis server's clock, so workers whose clocks disagree still agree on who holds a slot.

A job that finds no free slot raises :class:`NoFreeSlot`, naming the limit's :class:`Gate`: the executor
parks the job on it (``lua/includes/waiting.lua``), uncharged, and each slot given back puts one waiting
job back (:meth:`DistributedLimiter.slot`, :meth:`DistributedLimiter.unpark`).

A fleet-wide :class:`~worker.taskdef.limits.RateLimit` is one string per key (``jobq:rate:<name>:<key>``, its
GCRA theoretical arrival time on the server's clock; ``lua/rate_acquire.lua``). A start over the rate raises
:class:`NoFreeSlot` too, with the time until the key admits it (``retry_after_ms``): the job is parked on the
key's gate until exactly then, and each admitted start re-checks the gate at the next admission time, so a
backlog flows at the full rate (:meth:`DistributedLimiter.admit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from worker.protocol.keys import limit_key, marker_key, rate_key, waiting_gates_key, waiting_key
from worker.protocol.scripts import Scripts
from worker.protocol.waiting import limit_gate, local_gate, rate_gate
from worker.taskdef.limits import Limit, RateLimit

logger = logging.getLogger("jobq.limits")


@dataclass(frozen=True, slots=True)
class Gate:
    """A limit that jobs wait on while it is full (a concurrency limit) or used up (a rate limit)."""

    name: str  #: its name in the queue's gate index: ``task:<task>``, ``limit:<name>:<key>`` or ``rate:<name>:<key>``
    limit_key: str | None = None  #: a fleet limit's holders (``None``: a task's per-worker concurrency)
    max_holders: int = 0  #: a fleet limit's size
    task: str | None = None  #: the task whose per-worker concurrency this is (``None``: a fleet limit)

    @classmethod
    def local(cls, task: str) -> Gate:
        """The gate of ``task``'s per-worker ``concurrency``."""
        return cls(local_gate(task), task=task)

    @classmethod
    def of_limit(cls, limit: Limit, key: str) -> Gate:
        """The gate of one key of a fleet-wide limit."""
        return cls(limit_gate(limit.name, key), limit_key(limit.name, key), limit.max_concurrent)

    @classmethod
    def of_rate(cls, rate: RateLimit, key: str) -> Gate:
        """The gate of one key of a fleet-wide rate limit (its waiting jobs come back at its admission times)."""
        return cls(rate_gate(rate.name, key))


class NoFreeSlot(Exception):
    """Every slot of a concurrency limit is taken, or a rate limit is used up; the job waits on ``gate``, uncharged.

    ``retry_after_ms``: when the gate is known to admit the job (a rate limit's next start, ms from now);
    ``None``: when a slot frees, or the gate's regular re-check (``JOBQ_SLOT_RETRY_S``) comes.
    """

    def __init__(self, what: str, gate: Gate, *, retry_after_ms: int | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.gate = gate
        self.retry_after_ms = retry_after_ms


#: rate_acquire.lua's answer for a start reserved for a later time (the caller waits for it).
RESERVED = 2


class DistributedLimiter:
    """Takes, renews and gives back fleet-wide slots in Redis, and puts waiting jobs back when slots free."""

    def __init__(
        self, redis: ArqRedis, lease_s: float, *, clock: Callable[[], float] = time.time, rate_hold_s: float = 0.0,
        max_holding: int = 1, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:  # fmt: skip
        self._redis = redis
        self._lease_ms = max(1, round(lease_s * 1000))
        self._clock = clock  # the queue's time base (the gate index's and the marker's scores)
        self._rate_hold_ms = round(rate_hold_s * 1000)  # a rate slot this close is reserved and waited for here
        #: At most this many reserved starts wait in this worker at once (each holds a worker slot), so jobs of
        #: other keys and tasks still find slots; beyond, jobs over the rate park.
        self._max_holding = max_holding
        self._holding = 0
        self._sleep = sleep
        scripts = Scripts.of(redis)  # worker/protocol/lua/limit_*.lua, rate_acquire.lua, unpark.lua
        self._acquire = scripts["limit_acquire"]
        self._renew = scripts["limit_renew"]
        self._release = scripts["limit_release"]
        self._rate = scripts["rate_acquire"]
        self._unpark = scripts["unpark"]

    async def admit(self, rate: RateLimit, payload: Any, queue: str) -> None:
        """Count one start of ``payload``'s key against ``rate``, or raise :class:`NoFreeSlot` with the time
        until the key admits one (``retry_after_ms``); an admitted start is not given back. A start that may
        come within ``rate_hold_s`` is reserved, and waited for here (the caller starts when this returns)."""
        value = rate.key_of(payload)
        gate = Gate.of_rate(rate, value)
        keys = [rate_key(rate.name, value), waiting_gates_key(queue), waiting_key(queue, gate.name)]
        args = [
            repr(rate.interval_ms), rate.burst, gate.name, marker_key(queue), round(self._clock() * 1000),
            self._rate_hold_ms if self._holding < self._max_holding else 0,
        ]  # fmt: skip
        admitted, wait_ms = await self._rate(keys, args)
        if admitted == RESERVED:
            await self.hold(int(wait_ms))
            return
        if not admitted:
            what = f"rate limit {rate.name!r} is used up for key {value!r}; its next start is in {int(wait_ms)} ms"
            raise NoFreeSlot(what, gate, retry_after_ms=int(wait_ms))

    @property
    def hold_ms(self) -> int:
        """How far ahead a rate turn is reserved and waited for in this worker (``JOBQ_RATE_HOLD_S``, ms)."""
        return self._rate_hold_ms

    def hold_room(self) -> int:
        """How many more reserved starts this worker may wait for now."""
        return max(0, self._max_holding - self._holding) if self._rate_hold_ms else 0

    async def hold(self, wait_ms: int) -> None:
        """Wait ``wait_ms`` for a reserved rate turn (counted in :meth:`hold_room` meanwhile)."""
        self._holding += 1
        try:
            await self._sleep(wait_ms / 1000)
        finally:
            self._holding -= 1

    @contextlib.asynccontextmanager
    async def slot(self, limit: Limit, payload: Any, holder: str, queue: str) -> AsyncIterator[None]:
        """Hold one slot of ``limit`` for ``payload`` while the block runs, or raise :class:`NoFreeSlot`."""
        value = str(limit.key(payload))
        gate = Gate.of_limit(limit, value)
        key = gate.limit_key
        assert key is not None
        if not await self._acquire([key], [holder, self._lease_ms, limit.max_concurrent]):
            raise NoFreeSlot(f"limit {limit.name!r} is full for key {value!r}", gate)
        renewer = asyncio.create_task(self._keep_renewed(key, holder), name=f"jobq-lease-{holder}")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            # Shielded: a cancelled job must still give its slot back (and wake a job waiting for it).
            keys = [key, queue, waiting_gates_key(queue), waiting_key(queue, gate.name)]
            args = [holder, gate.name, marker_key(queue)]
            await asyncio.shield(self._give_back(self._release, keys, args, f"slot of {key}"))

    async def unpark(self, queue: str, gate: Gate, count: int = 1) -> None:
        """``count`` slots of ``gate`` freed in this worker: put as many jobs waiting on it back, in one call
        (errors are logged: the gate's re-check puts them back later)."""
        keys = [queue, waiting_gates_key(queue), waiting_key(queue, gate.name)]
        args = [gate.name, marker_key(queue), count]
        await asyncio.shield(self._give_back(self._unpark, keys, args, f"waiting job of {gate.name} on {queue!r}"))

    async def _give_back(self, script: Any, keys: list[str], args: list[Any], what: str) -> None:
        try:
            await script(keys, args)
        except (RedisError, OSError) as exc:  # Redis away: the holder's lease, or the gate's re-check, frees it
            logger.warning("could not give back the %s (%s: %s); the gate's re-check does it later", what,
                           type(exc).__name__, exc)  # fmt: skip

    async def _keep_renewed(self, key: str, holder: str) -> None:
        interval_s = self._lease_ms / 3000
        while True:
            await asyncio.sleep(interval_s)
            try:
                if not await self._renew([key], [holder, self._lease_ms]):
                    logger.warning("lease of %s on %s was lost; the limit may be exceeded", holder, key)
                    return
            except Exception as exc:  # a Redis blip must not kill the job; the next renewal may work
                logger.warning("could not renew lease of %s on %s: %s", holder, key, exc)
