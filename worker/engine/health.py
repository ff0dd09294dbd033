"""Worker health: what a worker knows about itself, its heartbeat in Redis, and ``jobq check``.

Each worker writes ``jobq:worker:<host>:<pid>`` (JSON, TTL three heartbeats) every
``JOBQ_HEALTH_INTERVAL_S`` and keeps itself in the ``jobq:workers`` sorted set (scored by its last
heartbeat). A worker that dies, hangs, or loses Redis stops beating and its key runs out, so
``jobq check`` (which reads those keys) fails for it. Unlike arq's single health key per queue,
one worker's shutdown never hides or deletes another's health.

A worker started by ``jobq worker --processes N`` also records itself in its supervisor's record,
``jobq:supervisor:<host>:<pid>`` (a hash: ``count`` = N, and slot index -> worker id, kept alive by
every worker's beat). A host's check reads it, so a worker whose key ran out while its siblings beat
(cut off from Redis, hung, crash-looping) still fails the check, by name, until its slot beats again;
the key of a worker its supervisor has replaced no longer counts.
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

from worker.process.supervisor import Slot
from worker.protocol.keys import WORKERS_INDEX, supervisor_key, worker_key
from worker.states import Outcome, TryTally, tally_of

#: The worker's own logger: connection changes are logged where the worker logs everything else.
_worker_logger = logging.getLogger("jobq.worker")


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
    # The ends of the tries this worker ran, each counted once by tally_of (worker.states): the
    # dashboard's throughput is succeeded + failed + retried, so uncharged tries stay out of it.
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    uncharged: int = 0
    last_error: str = ""
    slot: Slot | None = None  #: its place under ``jobq worker --processes N``, if a supervisor started it

    def count(self, outcome: Outcome) -> None:
        """Count the end of one try in the tally its outcome belongs to (see :func:`~worker.states.tally_of`)."""
        tally = tally_of(outcome)
        if tally is TryTally.SUCCEEDED:
            self.succeeded += 1
        elif tally is TryTally.FAILED:
            self.failed += 1
        elif tally is TryTally.RETRIED:
            self.retried += 1
        elif tally is TryTally.UNCHARGED:
            self.uncharged += 1

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


#: Every how many beats a worker also drops the index entries of workers whose heartbeat ran out.
PRUNE_EVERY = 12


class Heartbeat:
    """Writes one worker's heartbeat, and removes it on a clean shutdown.

    A beat is one round trip of two commands (the key and the index entry; no MULTI/EXEC: readers
    take the index's scores for what they are, and an entry without its key is a worker gone). Every
    :data:`PRUNE_EVERY` th beat, the first included, also drops the entries of workers gone for good:
    an idle worker's whole cost to Redis is its beat and its fallback poll.
    """

    def __init__(self, redis: ArqRedis, state: WorkerState, interval_s: float) -> None:
        self._redis = redis
        self._state = state
        self.interval_s = interval_s
        self._ttl_ms = round(interval_s * 3000)
        self._beats = 0

    async def beat(self) -> None:
        """Write the heartbeat now (one round trip)."""
        now_ms = round(time.time() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(worker_key(self._state.worker_id), self._state.to_json(), px=self._ttl_ms)
            pipe.zadd(WORKERS_INDEX, {self._state.worker_id: now_ms})
            if self._beats % PRUNE_EVERY == 0:
                pipe.zremrangebyscore(WORKERS_INDEX, "-inf", now_ms - self._ttl_ms)
            self._beats += 1
            slot = self._state.slot
            if slot is not None:
                record = supervisor_key(slot.supervisor)
                pipe.hset(record, mapping={"count": slot.count, str(slot.index): self._state.worker_id})
                pipe.pexpire(record, self._ttl_ms)
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
    reason: str = field(default="", compare=False)  #: why it is unhealthy, in words

    def describe(self) -> str:
        """One line for ``jobq check``: the worker, healthy or not, its last beat, and why."""
        age = "never" if self.age_s is None else f"{self.age_s:.1f}s ago"
        state = "healthy" if self.healthy else "UNHEALTHY"
        slot = self.detail.get("slot")
        where = f", worker {slot['index'] + 1} of {slot['count']} of supervisor {slot['supervisor']}" if slot else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{self.worker_id}: {state} (last beat {age}, running {self.detail.get('running', '?')}{where}){why}"


def _report(worker: str, raw: bytes | None, now: float, max_age_s: float) -> HealthReport:
    if raw is None:
        return HealthReport(worker, False, None, {}, "no heartbeat: the worker is cut off from Redis, hung or dead")
    detail: dict[str, Any] = orjson.loads(raw)
    age = now - float(detail.get("beat_at", 0))
    if age > max_age_s:
        reason = f"its last heartbeat is {age:.1f}s old, more than {max_age_s:g}s"
    elif not detail.get("connected"):
        reason = f"not connected to Redis ({detail.get('last_error') or 'not yet'})"
    elif detail.get("draining"):
        reason = "draining: it is stopping"
    else:
        reason = ""
    return HealthReport(worker, not reason, age, detail, reason)


async def read_health(
    redis: ArqRedis, *, worker_id: str | None, host: str | None, max_age_s: float, queue: str | None = None
) -> list[HealthReport]:
    """Reports for one worker (``worker_id``), or for the workers of ``host`` (on ``queue``) that beat recently.

    For a host, each supervisor found among its workers adds a report for every one of its slots: a
    worker whose heartbeat ran out is reported by name, a slot that never beat as missing.
    """
    if worker_id is not None:
        ids = [worker_id]
    else:
        members = await redis.zrange(WORKERS_INDEX, 0, -1)
        ids = [m.decode() for m in members if host is None or m.decode().rsplit(":", 1)[0] == host]
    if not ids:
        return []
    raws = await redis.mget([worker_key(i) for i in ids])
    now = time.time()
    if worker_id is not None:  # asked for by name: missing means dead
        return [_report(worker_id, raws[0], now, max_age_s)]
    # Found through the index: a worker whose key is gone is no longer this host's (unless a supervisor says so).
    reports = [_report(w, raw, now, max_age_s) for w, raw in zip(ids, raws, strict=True) if raw is not None]
    if queue is not None:
        reports = [r for r in reports if r.detail.get("queue") == queue]
    return await _with_supervisors(redis, reports, now, max_age_s)


async def _with_supervisors(
    redis: ArqRedis, reports: list[HealthReport], now: float, max_age_s: float
) -> list[HealthReport]:
    """``reports`` with each supervisor's workers replaced by one report per slot of its record."""
    supervisors = sorted({r.detail["slot"]["supervisor"] for r in reports if r.detail.get("slot")})
    if not supervisors:
        return reports
    async with redis.pipeline(transaction=False) as pipe:
        for supervisor in supervisors:
            pipe.hgetall(supervisor_key(supervisor))
        records: list[dict[bytes, bytes]] = await pipe.execute()
    by_id = {r.worker_id: r for r in reports}
    out = [r for r in reports if not r.detail.get("slot") or r.detail["slot"]["supervisor"] not in supervisors]
    for supervisor, record in zip(supervisors, records, strict=True):
        if b"count" not in record:  # the record ran out: keep what the heartbeats say
            out += [r for r in reports if r.detail.get("slot") and r.detail["slot"]["supervisor"] == supervisor]
            continue
        count = int(record[b"count"])
        for index in range(count):
            slot = {"supervisor": supervisor, "index": index, "count": count}
            worker = record.get(str(index).encode())
            if worker is None:
                out.append(HealthReport(f"{supervisor}/{index + 1}", False, None, {"slot": slot}, "never beat"))
            elif worker.decode() in by_id:
                out.append(by_id[worker.decode()])
            else:
                found = _report(worker.decode(), await redis.get(worker_key(worker.decode())), now, max_age_s)
                detail = {"slot": slot, **found.detail}
                out.append(HealthReport(found.worker_id, found.healthy, found.age_s, detail, found.reason))
    return out


class ArqCounter:
    """One of arq's job counters on a worker (``jobs_complete``...), read from its ``WorkerState``: each try
    is counted once, there. arq's ``Worker.__init__`` setting it to 0 is ignored."""

    def __init__(self, tally: TryTally) -> None:
        self._tally = tally

    def __get__(self, worker: Any, owner: type | None = None) -> int:
        return int(getattr(worker.state, self._tally.value))

    def __set__(self, worker: Any, value: int) -> None:
        return None
