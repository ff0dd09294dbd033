"""A snapshot of one queue: ready, waiting, deferred and running jobs, the oldest ready and waiting jobs'
ages, whether it is paused, dead letters and live workers — read in two round trips."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix

from worker.protocol.keys import (
    QUEUES_INDEX,
    WORKERS_INDEX,
    dead_letter_index,
    paused_key,
    waiting_gates_key,
    waiting_key,
    worker_key,
)
from worker.protocol.priority import PROMOTE_GATE, QueueScore
from worker.protocol.waiting import PARKED_FLOOR, PAUSED_GATE


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How one queue looks right now."""

    queue: str
    at: float  #: seconds since the epoch
    queued: int  #: in the queue, running ones included
    ready: int  #: due now and waiting for a worker (running ones excluded)
    deferred: int  #: not due yet (scheduled, or waiting for a retry)
    running: int  #: reported by the live workers of this queue
    oldest_ready_age_s: float  #: how long the oldest waiting due job has waited (0 when none)
    dead_letters: int
    workers: int  #: live workers serving this queue
    processed: int = 0  #: tries finished by the live workers since they started (for throughput)
    waiting: int = 0  #: due, but parked until a slot of their concurrency limit frees (backlog too)
    oldest_waiting_age_s: float = 0.0  #: how long the oldest parked job has been due (0 when none)
    paused: bool = False  #: no worker claims from the queue until it is resumed

    @property
    def backlog(self) -> int:
        """Due jobs not running: ready ones and parked ones."""
        return self.ready + self.waiting

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain data."""
        return asdict(self)


#: How many of the earliest due jobs are checked for a lease, to tell waiting from running ones.
LEASE_WINDOW = 100


async def queue_stats(redis: ArqRedis, queue: str, *, now: float | None = None) -> QueueStats:
    """Read the stats of ``queue``.

    A running job stays in the queue's sorted set while it holds its lease, so ``ready`` and the
    oldest ready age look at the first :data:`LEASE_WINDOW` due jobs and leave out those that hold
    a lease: a long job being worked on is not a job waiting for a worker.
    """
    now = time.time() if now is None else now
    now_ms = round(now * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(queue)
        pipe.zcount(queue, "-inf", now_ms)
        pipe.zrangebyscore(queue, "-inf", now_ms, start=0, num=LEASE_WINDOW, withscores=True)
        pipe.zcard(dead_letter_index(queue))
        pipe.zrange(WORKERS_INDEX, 0, -1)
        pipe.zcount(queue, PARKED_FLOOR, "+inf")
        pipe.zrangebyscore(queue, PARKED_FLOOR, "+inf", start=0, num=1, withscores=True)
        pipe.exists(paused_key(queue))
        # The default priority's band: the first due jobs are the highest priority's (see worker.protocol.priority).
        pipe.zrangebyscore(queue, 0, now_ms, start=0, num=LEASE_WINDOW, withscores=True)
        total, due, first_due, dead, members, parked, first_parked, paused, first_default = await pipe.execute()
    if first_default and first_default[0] != (first_due[0] if first_due else None):
        first_due = first_due + [e for e in first_default if e not in first_due]  # prioritized jobs are due too
    lease_keys = [in_progress_key_prefix + raw.decode(errors="replace") for raw, _ in first_due]
    beat_keys = [worker_key(m.decode()) for m in members]
    found = await redis.mget(lease_keys + beat_keys) if lease_keys or beat_keys else []  # one round trip for both
    leases, beats = found[: len(lease_keys)], found[len(lease_keys) :]
    waiting = sorted(
        QueueScore.of(score).due_ms for (_, score), lease in zip(first_due, leases, strict=True) if lease is None
    )
    live = [orjson.loads(b) for b in beats if b is not None]
    mine = [w for w in live if w.get("queue") == queue]
    oldest_age = max(0.0, now - waiting[0] / 1000) if waiting else 0.0
    oldest_parked_age = max(0.0, now - QueueScore.of(first_parked[0][1]).due_ms / 1000) if first_parked else 0.0
    return QueueStats(
        queue=queue,
        at=now,
        queued=int(total),
        ready=max(0, int(due) - (len(first_due) - len(waiting))),
        deferred=int(total) - int(due) - int(parked),
        running=sum(int(w.get("running", 0)) for w in mine),
        oldest_ready_age_s=round(oldest_age, 3),
        dead_letters=int(dead),
        workers=len(mine),
        processed=sum(int(w.get(k, 0)) for w in mine for k in ("succeeded", "failed", "retried")),
        waiting=int(parked),
        oldest_waiting_age_s=round(oldest_parked_age, 3),
        paused=bool(paused),
    )


async def known_queues(redis: ArqRedis, default: str, also: Iterable[str] = ()) -> list[str]:
    """``default``, ``also`` (e.g. the queues tasks name), every queue a jobq producer enqueued to (the
    :data:`~worker.protocol.keys.QUEUES_INDEX`) and every queue a live worker serves."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrange(WORKERS_INDEX, 0, -1)
        pipe.smembers(QUEUES_INDEX)
        members, indexed = await pipe.execute()
    beats = await redis.mget([worker_key(m.decode()) for m in members]) if members else []
    queues = {default, *also} | {q.decode(errors="replace") for q in indexed}
    queues |= {str(orjson.loads(b).get("queue")) for b in beats if b is not None}
    return sorted(queues)


@dataclass(frozen=True, slots=True)
class GateWait:
    """A limit jobs of a queue wait on (see ``lua/includes/waiting.lua``): how many, and its next re-check."""

    gate: str  #: ``task:<task>`` (per-worker concurrency), ``limit:<name>:<key>``, ``rate:<name>:<key>``
    waiting: int
    recheck_at: float  #: seconds since the epoch


#: Members of a gate index that are no limit: the promotion of deferred prioritized jobs, and a pause.
NOT_LIMITS = frozenset({PROMOTE_GATE, PAUSED_GATE})


async def gate_waits(redis: ArqRedis, queue: str) -> list[GateWait]:
    """The gates of ``queue`` that jobs wait on now, the most waited on first (deferred prioritized jobs waiting
    for their promotion are not listed: they are deferred, not waiting)."""
    gates = await redis.zrange(waiting_gates_key(queue), 0, -1, withscores=True)
    named = [(g.decode(errors="replace"), s) for g, s in gates if g.decode(errors="replace") not in NOT_LIMITS]
    async with redis.pipeline(transaction=False) as pipe:
        for gate, _ in named:
            pipe.zcard(waiting_key(queue, gate))
        counts = await pipe.execute() if named else []
    waits = [GateWait(g, int(n), score / 1000) for (g, score), n in zip(named, counts, strict=True) if n]
    return sorted(waits, key=lambda w: (-w.waiting, w.gate))


#: What a gate's name says its jobs wait for (see worker.protocol.waiting).
LIMIT_KINDS = {"task": "concurrency", "limit": "fleet", "rate": "rate"}


def waiting_by_limit(waits: list[GateWait]) -> dict[str, int]:
    """The parked jobs counted by what they wait for: ``concurrency``, ``fleet`` or ``rate`` (all three given)."""
    counts = dict.fromkeys(LIMIT_KINDS.values(), 0)
    for w in waits:
        kind = LIMIT_KINDS.get(w.gate.split(":", 1)[0])
        if kind is not None:
            counts[kind] += w.waiting
    return counts


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job a worker is running now."""

    job_id: str
    task: str
    worker: str
    due_at: float  #: seconds since the epoch


async def running_jobs(redis: ArqRedis, queue: str, *, limit: int = 50, now: float | None = None) -> list[RunningJob]:
    """Jobs of ``queue`` that hold a lease now (looked for among the first due jobs)."""
    now_ms = round((time.time() if now is None else now) * 1000)
    due = await redis.zrangebyscore(queue, "-inf", now_ms, start=0, num=max(limit * 5, 100), withscores=True)
    if not due:
        return []
    ids = [raw.decode(errors="replace") for raw, _ in due]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.get(in_progress_key_prefix + job_id)
            pipe.get(job_key_prefix + job_id)
        answers = await pipe.execute()
    found: list[RunningJob] = []
    for (job_id, (_, score)), lease, envelope in zip(
        zip(ids, due, strict=True), answers[::2], answers[1::2], strict=True
    ):
        if lease is None or len(found) >= limit:
            continue
        worker = lease.decode(errors="replace").rsplit(":", 1)[0]
        found.append(RunningJob(job_id, _task_name(envelope), worker, QueueScore.of(score).due_ms / 1000))
    return found


def _task_name(envelope: bytes | None) -> str:
    if envelope is None:
        return "?"
    try:
        body = orjson.loads(envelope)
        inner = orjson.loads(body["d"]) if isinstance(body.get("d"), str) else body.get("d", {})
        return str(inner.get("f", "?"))
    except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
        return "?"
