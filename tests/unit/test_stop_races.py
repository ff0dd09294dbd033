"""A worker's background loops stop when cancelled, even when the cancellation reaches them as a timeout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.engine.marker import MarkerWatch
from worker.engine.wakeup import WakeUp


class CancelBecomesTimeout:
    """A connection whose read turns a cancellation into a timeout, as asyncio.timeout does in Python 3.11's race."""

    async def send_command(self, *args: Any) -> None:
        return None

    async def read_response(self, **_: Any) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RedisTimeoutError("Timeout reading from socket") from None

    async def disconnect(self) -> None:
        return None


class Pool:
    async def get_connection(self, *_: Any) -> CancelBecomesTimeout:
        return CancelBecomesTimeout()

    async def release(self, _connection: Any) -> None:
        return None


class FakeRedis:
    connection_pool = Pool()


async def test_the_marker_watch_stops_when_its_cancellation_comes_out_as_a_timeout() -> None:
    watch = MarkerWatch(FakeRedis(), "arq:queue", WakeUp(), block_s=1.0)  # type: ignore[arg-type]
    watch.accept(True)
    listener = asyncio.create_task(watch.run())
    while not watch.blocking:
        await asyncio.sleep(0)
    listener.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(listener, 2)  # it would reconnect for ever: the worker never exited
