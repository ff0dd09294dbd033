"""Waking an idle worker the moment there is work, instead of polling the queue.

Producers publish on ``jobq:wake:<queue>`` in the same script that enqueues (one command); each
worker keeps one subscription open and wakes its loop on every message. The loop clears the flag
*before* it claims, so a signal that arrives between the claim and the wait is not lost: the wait
returns at once. A finished job (a free slot) and a stop signal wake the loop too. Stock arq
producers do not publish, so the loop still looks at the queue every ``JOBQ_POLL_DELAY_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from worker.process.eventloop import cancel_requested
from worker.protocol.keys import wake_channel
from worker.protocol.redis_retry import TRANSIENT

logger = logging.getLogger("jobq.worker")

#: How long one read of the subscription waits before it looks again (a local wait, no command).
READ_WAIT_S = 1.0
RESUBSCRIBE_MAX_S = 5.0


class WakeUp:
    """A flag the loop waits on, raised by producers' signals, freed slots and stop requests."""

    def __init__(self, redis: ArqRedis, queue: str) -> None:
        self._redis = redis
        self.channel = wake_channel(queue)
        self._signalled = False
        self._waiter: asyncio.Future[None] | None = None
        self.subscribed = False

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

    async def listen(self) -> None:
        """Keep a subscription to the wake-up channel open (re-subscribing after outages); run as a task."""
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed = True
                backoff = 0.1
                self.set()  # a job enqueued while (re)subscribing sent its signal to nobody
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=READ_WAIT_S)
                    if message is not None:
                        self.set()
            except ResponseError as exc:  # e.g. NOPERM: the ACL user may not use the wake-up channels
                logger.warning(
                    "no wake-up subscription on %s (%s); idle workers poll every JOBQ_POLL_DELAY_S instead",
                    self.channel,
                    exc,
                )
                self.subscribed = False
                return
            except TRANSIENT as exc:
                if cancel_requested():  # a stop that reached us as a timeout: the worker's shutdown waits for it
                    raise asyncio.CancelledError from exc
                if self.subscribed:
                    logger.warning(
                        "wake-up subscription lost (%s: %s); polling until it is back", type(exc).__name__, exc
                    )
                self.subscribed = False
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESUBSCRIBE_MAX_S)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
