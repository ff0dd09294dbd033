"""Blocking on the queue's marker, so that one ready job wakes one idle worker (see ``includes/marker.lua``).

The marker ``jobq:marker:<queue>`` is a sorted set of one member, scored by when a worker should next
look at the queue. The enqueue script arms it for the earliest job it wrote; a retry, a deferral and a
released lease arm it too, and a claim that left due jobs behind (or saw the next deferred one) arms it
again. Idle workers block on it with ``BZPOPMIN`` on a connection taken out of the pool for the worker's
life, so commands never queue behind the blocked call: Redis hands the marker to exactly one of them,
whatever the size of the fleet, and a blocked worker costs Redis nothing until then.

A worker that pops a score in the future waits for that time itself (the *promoter* of the deferred jobs:
one worker, not every one polling) and records it in ``<marker>:timer`` so that other claims do not arm
the marker for it again. A marker popped while the worker cannot take jobs (full, stopping) is put back
at once; a time this worker waited for is put back when it stops or is full when the time comes.

Jobs written by stock arq producers arm nothing: the worker's fallback poll (``JOBQ_POLL_DELAY_S``) finds
them, and so does any claim. A user without access to the marker (an ACL without ``BZPOPMIN``, Redis
older than 6.2) gets a warning and the fallback poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError, ResponseError

from worker.engine.wakeup import WakeUp
from worker.process.eventloop import cancel_requested
from worker.protocol.keys import marker_key, marker_timer_key
from worker.protocol.redis_retry import TRANSIENT

logger = logging.getLogger("jobq.worker")

#: How long a reply may take beyond the blocking call's own timeout before the connection counts as lost.
READ_MARGIN_S = 5.0
#: How long the timer key outlives the time it names (it only matters until then).
TIMER_SLACK_MS = 60_000
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 5.0


class MarkerWatch:
    """The worker's blocking call on its queue's marker, run as a task beside the loop (:meth:`run`)."""

    def __init__(
        self, redis: ArqRedis, queue: str, wake: WakeUp, *, block_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.key = marker_key(queue)
        self.timer_key = marker_timer_key(queue)
        self._redis = redis
        self._wake = wake
        self._block_s = block_s
        self._clock = clock
        self._open = asyncio.Event()  # set while the worker can take jobs: only then does it block
        self._signalled = False  # a marker for now was popped since the loop last looked
        #: The due time (ms) this worker popped and waits for, if any.
        self.awaited_ms: int | None = None
        #: Whether a blocking call is outstanding now (tests wait for it: the worker is idle and reachable).
        self.blocking = False
        #: Whether the marker reaches this worker (the last blocking call worked); else the loop polls.
        self.available = False
        #: Markers popped so far.
        self.pops = 0
        self._backoff_s = RECONNECT_MIN_S

    def accept(self, can_take_jobs: bool) -> None:
        """The loop says whether it can take jobs now; the watch blocks only while it can."""
        if can_take_jobs:
            self._open.set()
        else:
            self._open.clear()

    def take_signal(self) -> bool:
        """Whether a marker for now came since the last call (the loop then claims)."""
        signalled, self._signalled = self._signalled, False
        return signalled

    def due(self, now_ms: int) -> bool:
        """Whether the time this worker waits for has come."""
        return self.awaited_ms is not None and self.awaited_ms <= now_ms

    def wait_s(self, now_ms: int) -> float | None:
        """Seconds until the awaited time (``None``: none awaited)."""
        return None if self.awaited_ms is None else (self.awaited_ms - now_ms) / 1000

    def done_waiting(self) -> None:
        """The loop claimed at the awaited time: its claim arms the marker for the next one."""
        self.awaited_ms = None

    async def hand_back(self) -> None:
        """Give the fleet what this worker took and will not act on: the awaited time, an unused signal."""
        at = 0 if self._signalled else self.awaited_ms
        self._signalled = False
        self.awaited_ms = None
        if at is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.execute_command("ZADD", self.key, "LT", at, "m")  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    async def run(self) -> None:
        """Block on the marker while the worker can take jobs (reconnecting after outages); run as a task."""
        pool = self._redis.connection_pool
        while True:
            await self._open.wait()
            conn: Any = None
            try:
                conn = await pool.get_connection()
                await self._pop_while_open(conn)
            except ResponseError as exc:  # NOPERM, or a Redis without ZADD LT
                logger.warning(
                    "no blocking wait on %s (%s); idle workers poll every JOBQ_POLL_DELAY_S instead", self.key, exc
                )
                self.available = False
                return
            except TRANSIENT as exc:
                if cancel_requested():  # a stop that reached us as a timeout: the worker's shutdown waits for it
                    raise asyncio.CancelledError from exc
                if self.available:
                    logger.warning("blocking wait on %s lost (%s: %s); polling until it is back", self.key,
                                   type(exc).__name__, exc)  # fmt: skip
                self.available = False
            except Exception:  # a defect must not silently end the wake-ups: log it, poll, and try again
                logger.exception("blocking wait on %s failed; polling until it is back", self.key)
                self.available = False
            finally:
                self.blocking = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._discard(pool, conn))
            await asyncio.sleep(self._backoff_s)
            self._backoff_s = min(self._backoff_s * 2, RECONNECT_MAX_S)

    async def _pop_while_open(self, conn: Any) -> None:
        while True:
            await self._open.wait()
            self.blocking = True
            await conn.send_command("BZPOPMIN", self.key, self._block_s)
            reply = await conn.read_response(timeout=self._block_s + READ_MARGIN_S)
            self.blocking = False
            if cancel_requested():  # a stop the read swallowed (it ended with a reply): the shutdown waits for it
                raise asyncio.CancelledError
            self._backoff_s = RECONNECT_MIN_S  # answered: the next outage backs off from the start
            if not self.available:
                self.available = True
                self._wake.set()  # a job enqueued while this call was away armed a marker for nobody
            if reply is not None:
                await self._popped(conn, int(float(reply[2])))

    @staticmethod
    async def _discard(pool: Any, conn: Any) -> None:
        # The connection may be mid-reply (cancelled while blocked): it goes back to the pool closed.
        await conn.disconnect()
        await pool.release(conn)

    async def _popped(self, conn: Any, score: int) -> None:
        self.pops += 1
        now_ms = round(self._clock() * 1000)
        if not self._open.is_set():  # full or stopping since the call was sent: another worker takes it
            await conn.send_command("ZADD", self.key, "LT", score, "m")
            await conn.read_response()
            return
        if score <= now_ms:
            self._signalled = True
        elif self.awaited_ms is None or score < self.awaited_ms:
            self.awaited_ms = score
            await conn.send_command("SET", self.timer_key, score, "PX", score - now_ms + TIMER_SLACK_MS)
            await conn.read_response()
        self._wake.set()
