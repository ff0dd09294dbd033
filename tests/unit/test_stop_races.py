"""A worker's background loops stop when cancelled, even when the cancellation reaches them as a timeout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.engine.wakeup import WakeUp


class CancelBecomesTimeout:
    """A pubsub whose read turns a cancellation into a timeout, as asyncio.timeout does in Python 3.11's race."""

    async def subscribe(self, *channels: str) -> None:
        return None

    async def get_message(self, **_: Any) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RedisTimeoutError("Timeout reading from socket") from None

    async def aclose(self) -> None:
        return None


class FakeRedis:
    def pubsub(self) -> CancelBecomesTimeout:
        return CancelBecomesTimeout()


async def test_the_wake_up_listener_stops_when_its_cancellation_comes_out_as_a_timeout() -> None:
    wakeup = WakeUp(FakeRedis(), "arq:queue")  # type: ignore[arg-type]
    listener = asyncio.create_task(wakeup.listen())
    while not wakeup.subscribed:
        await asyncio.sleep(0)
    listener.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(listener, 2)  # it used to re-subscribe for ever: the worker never exited
