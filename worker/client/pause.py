"""Pausing a queue: while ``jobq:paused:<queue>`` is present no worker claims from it (``lua/claim.lua`` checks
it first), and enqueues still land. Running jobs finish; the pause lasts, across worker restarts, until a
resume, which wakes an idle worker at once through the queue's marker (``lua/pause.lua``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from arq.connections import ArqRedis

from worker.protocol.keys import marker_key, paused_key, waiting_gates_key
from worker.protocol.scripts import Scripts

__all__ = ["QueuePause", "pause_queue", "queue_pause", "resume_queue"]


@dataclass(frozen=True, slots=True)
class QueuePause:
    """A pause in force: since when, and who asked for it."""

    queue: str
    since: datetime
    by: str  #: what the pausing call said about itself (``user@host`` by default)


def default_by() -> str:
    """Who pauses, when the caller does not say: the host name (the CLI adds the user)."""
    return socket.gethostname()


def _keys(queue: str) -> list[str]:
    return [paused_key(queue), waiting_gates_key(queue)]  # the record, and the gate index the claim reads it in


async def pause_queue(redis: ArqRedis, queue: str, *, by: str, now_ms: int) -> bool:
    """Pause ``queue``; ``False`` when it was paused already (that pause is kept as it is)."""
    record = orjson.dumps({"at": now_ms, "by": by[:200]})
    return bool(await Scripts.of(redis)["pause"](_keys(queue), ["pause", record, marker_key(queue)]))


async def resume_queue(redis: ArqRedis, queue: str) -> bool:
    """Resume ``queue`` and wake an idle worker for it; ``False`` when it was not paused."""
    return bool(await Scripts.of(redis)["pause"](_keys(queue), ["resume", "", marker_key(queue)]))


async def queue_pause(redis: ArqRedis, queue: str) -> QueuePause | None:
    """The pause of ``queue`` in force, or ``None`` when it is not paused."""
    raw = await redis.get(paused_key(queue))
    if raw is None:
        return None
    try:
        record = orjson.loads(raw)
        since, by = datetime.fromtimestamp(int(record["at"]) / 1000, tz=UTC), str(record.get("by", ""))
    except (ValueError, TypeError, KeyError, OverflowError):  # written by hand: paused all the same
        since, by = datetime.fromtimestamp(0, tz=UTC), ""
    return QueuePause(queue, since, by)
