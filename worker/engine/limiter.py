"""Enforcing the fleet-wide concurrency limits tasks declare (:class:`~worker.taskdef.limits.Limit`).

A fleet-wide limit (:class:`Limit`) is a Redis sorted set per key whose members are the holders
(one per running try) scored by the expiry of their lease. A holder renews its lease every third of
the lease while its job runs; the slots of a crashed worker are not renewed and free themselves
when their lease runs out. Lease times come from the Redis server's clock, so workers whose clocks
disagree still agree on who holds a slot.

A job that finds no free slot is not kept waiting in the worker: :class:`NoFreeSlot` makes the
executor defer it for a moment without charging a try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from arq.connections import ArqRedis

from worker.protocol.keys import limit_key
from worker.protocol.scripts import Scripts
from worker.taskdef.limits import Limit

logger = logging.getLogger("jobq.limits")


class NoFreeSlot(Exception):
    """Every slot of a concurrency limit is taken; the job should be deferred, uncharged."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class DistributedLimiter:
    """Takes, renews and gives back fleet-wide slots in Redis."""

    def __init__(self, redis: ArqRedis, lease_s: float) -> None:
        self._redis = redis
        self._lease_ms = max(1, round(lease_s * 1000))
        scripts = Scripts.of(redis)  # worker/protocol/lua/limit_*.lua
        self._acquire = scripts["limit_acquire"]
        self._renew = scripts["limit_renew"]

    @contextlib.asynccontextmanager
    async def slot(self, limit: Limit, payload: Any, holder: str) -> AsyncIterator[None]:
        """Hold one slot of ``limit`` for ``payload`` while the block runs, or raise :class:`NoFreeSlot`."""
        key = limit_key(limit.name, str(limit.key(payload)))
        if not await self._acquire([key], [holder, self._lease_ms, limit.max_concurrent]):
            raise NoFreeSlot(f"limit {limit.name!r} is full for key {key.rsplit(':', 1)[-1]!r}")
        renewer = asyncio.create_task(self._keep_renewed(key, holder), name=f"jobq-lease-{holder}")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            # Shielded: a cancelled job must still give its slot back.
            await asyncio.shield(self._redis.zrem(key, holder))

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
