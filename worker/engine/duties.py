"""The worker's background duties (lease renewal, heartbeat): each repeated for as long as the worker
runs, through Redis outages, until Redis refuses a permission it needs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ResponseError

from worker.engine.health import WorkerState
from worker.process.eventloop import cancel_requested
from worker.protocol.redis_retry import TRANSIENT


async def every(
    interval_s: float,
    duty: Callable[[], Awaitable[Any]],
    state: WorkerState,
    refused: Callable[[ResponseError], bool],
) -> None:
    """Run ``duty`` every ``interval_s``; a success and an outage are recorded in ``state`` and the duty goes on;
    a refusal that ``refused`` takes for a missing permission ends it (the worker then stops)."""
    while True:
        try:
            await duty()
            state.redis_ok()
        except TRANSIENT as exc:
            if cancel_requested():  # the stop came as a timeout (worker.process.eventloop.cancel_requested)
                raise asyncio.CancelledError from exc
            state.redis_failed(exc)
        except ResponseError as exc:
            if not refused(exc):
                raise
            return
        await asyncio.sleep(interval_s)
