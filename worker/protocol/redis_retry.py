"""Sending a Redis call again while Redis is away, restarting or loading."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("jobq.finish")
T = TypeVar("T")

#: Errors after which a script is worth sending again: Redis is away, restarting or loading. A refused
#: permission (NOPERM, a script's refused command) is not one: it is configuration, named by
#: worker.protocol.permissions, and the worker stops on it.
TRANSIENT = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)


async def with_redis_retries(op: Callable[[], Awaitable[T]], what: str, *, deadline_s: float) -> T:
    """Run ``op``, sending it again with backoff while Redis is unreachable, for up to ``deadline_s``."""
    give_up_at = time.monotonic() + deadline_s
    delay = 0.05
    while True:
        try:
            return await op()
        except TRANSIENT as exc:
            if time.monotonic() + delay > give_up_at:
                raise
            logger.warning("%s failed (%s: %s); trying again in %.2fs", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
