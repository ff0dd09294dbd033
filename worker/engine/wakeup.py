"""The flag an idle worker's loop waits on: raised by a popped marker, a freed slot or a stop request.

The loop clears the flag *before* it claims, so a signal that arrives between the claim and the wait is
not lost: the wait returns at once. What raises it from Redis is :mod:`worker.engine.marker`.
"""

from __future__ import annotations

import asyncio


class WakeUp:
    """A flag the loop waits on, raised by popped markers, freed slots and stop requests."""

    def __init__(self) -> None:
        self._signalled = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Wake the loop (or make its next wait return at once)."""
        self._signalled = True
        if self._waiter is not None:
            _resolve(self._waiter)

    def clear(self) -> None:
        """Forget earlier signals: called right before the loop looks at the queue."""
        self._signalled = False

    async def wait(self, timeout_s: float) -> bool:
        """Wait for a signal for up to ``timeout_s``; ``True`` when one came."""
        # A bare future and a timer: the loop resumes in the iteration after the signal (asyncio.Event
        # plus wait_for would take a task and two more iterations).
        if self._signalled or timeout_s <= 0:
            return self._signalled
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout_s, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return self._signalled


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
