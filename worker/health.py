"""Worker health: what a worker knows about itself, its heartbeat in Redis, and ``jobq check``.

Each worker writes ``jobq:worker:<host>:<pid>`` (JSON, TTL three heartbeats) every
``JOBQ_HEALTH_INTERVAL_S`` and keeps itself in the ``jobq:workers`` sorted set (scored by its last
heartbeat). A worker that dies, hangs, or loses Redis stops beating and its key runs out, so
``jobq check`` (which reads those keys) fails for it. Unlike arq's single health key per queue,
one worker's shutdown never hides or deletes another's health.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from arq.connections import ArqRedis

WORKERS_INDEX = "jobq:workers"
#: The worker's own logger: connection changes are logged where the worker logs everything else.
_worker_logger = logging.getLogger("jobq.worker")


def worker_key(worker_id: str) -> str:
    """The heartbeat key of one worker."""
    return f"jobq:worker:{worker_id}"


def default_worker_id() -> str:
    """``<host>:<pid>``: unique among live workers, and lets ``jobq check`` find this host's workers."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerState:
    """What a worker knows about its own health; read by the heartbeat and the HTTP probes."""

    worker_id: str
    queue: str
    started_at: float = field(default_factory=time.time)
    connected: bool = False
    last_redis_ok: float = 0.0  #: monotonic time of the last successful Redis round trip
    last_loop: float = field(default_factory=time.monotonic)  #: monotonic time the main loop last went round
    draining: bool = False
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    last_error: str = ""

    def redis_ok(self) -> None:
        """A Redis round trip just worked (logged when the worker was not connected)."""
        if not self.connected:
            _worker_logger.info("worker %s connected to Redis", self.worker_id)
        self.connected = True
        self.last_redis_ok = time.monotonic()
        self.last_error = ""

    def redis_failed(self, exc: BaseException) -> bool:
        """A Redis round trip failed; returns True (and logs it) when this is news (the worker was connected)."""
        was_connected = self.connected
        self.connected = False
        self.last_error = f"{type(exc).__name__}: {exc}"
        if was_connected:
            _worker_logger.warning(
                "worker %s lost Redis (%s: %s); retrying with backoff", self.worker_id, type(exc).__name__, exc
            )
        return was_connected

    def to_json(self) -> bytes:
        """The heartbeat's payload."""
        data = asdict(self)
        data["beat_at"] = time.time()
        data.pop("last_redis_ok")
        data.pop("last_loop")
        return orjson.dumps(data)


class Heartbeat:
    """Writes one worker's heartbeat, and removes it on a clean shutdown."""

    def __init__(self, redis: ArqRedis, state: WorkerState, interval_s: float) -> None:
        self._redis = redis
        self._state = state
        self.interval_s = interval_s
        self._ttl_ms = round(interval_s * 3000)

    async def beat(self) -> None:
        """Write the heartbeat now (one round trip)."""
        now_ms = round(time.time() * 1000)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(worker_key(self._state.worker_id), self._state.to_json(), px=self._ttl_ms)
            pipe.zadd(WORKERS_INDEX, {self._state.worker_id: now_ms})
            pipe.zremrangebyscore(WORKERS_INDEX, "-inf", now_ms - self._ttl_ms)
            await pipe.execute()

    async def remove(self) -> None:
        """Forget this worker (clean shutdown)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(worker_key(self._state.worker_id))
            pipe.zrem(WORKERS_INDEX, self._state.worker_id)
            await pipe.execute()


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One worker as ``jobq check`` sees it."""

    worker_id: str
    healthy: bool
    age_s: float | None  #: seconds since its last heartbeat (None: no heartbeat found)
    detail: dict[str, Any]


async def read_health(
    redis: ArqRedis, *, worker_id: str | None, host: str | None, max_age_s: float, queue: str | None = None
) -> list[HealthReport]:
    """Reports for one worker (``worker_id``), or for the workers of ``host`` (on ``queue``) that beat recently."""
    if worker_id is not None:
        ids = [worker_id]
    else:
        members = await redis.zrange(WORKERS_INDEX, 0, -1)
        ids = [m.decode() for m in members if host is None or m.decode().rsplit(":", 1)[0] == host]
    if not ids:
        return []
    raws = await redis.mget([worker_key(i) for i in ids])
    reports = []
    now = time.time()
    for worker, raw in zip(ids, raws, strict=True):
        if raw is None:
            if worker_id is not None:  # asked for by name: missing means dead
                reports.append(HealthReport(worker, False, None, {}))
            continue  # found through the index: a worker that is gone is no longer this host's
        detail: dict[str, Any] = orjson.loads(raw)
        if worker_id is None and queue is not None and detail.get("queue") != queue:
            continue
        age = now - float(detail.get("beat_at", 0))
        healthy = age <= max_age_s and bool(detail.get("connected")) and not detail.get("draining")
        reports.append(HealthReport(worker, healthy, age, detail))
    return reports
