"""Jobs waiting for a concurrency slot, as the queue holds them (see ``lua/includes/waiting.lua``).

A job parked on a full limit's gate stays in its queue, scored :data:`WAITING_BASE` plus its due time: far
beyond any due time, so no claim takes it and stock arq sees a job deferred far ahead, while its status,
an abort or a delete still find it. Its id also sits in the gate's waiting set until a freed slot (or the
gate's re-check) puts it back at its due time.
"""

from __future__ import annotations

__all__ = ["PARKED_FLOOR", "WAITING_BASE", "is_waiting", "limit_gate", "local_gate", "rate_gate"]

#: 2**52: every score at or above it is a parked job (``includes/waiting.lua`` holds the same number).
#: A due time in ms stays below 2**52 until the year 144,683, and the sum stays exact in a double.
WAITING_BASE = 4503599627370496
#: 2**51: every parked score is at or above it, every other below it (a prioritized job's due score is below
#: its due time, see :mod:`worker.protocol.priority`, by less than 2**51).
PARKED_FLOOR = 2251799813685248
#: The member of a paused queue's gate index, scored 0: the claim reads the pause there (see ``lua/pause.lua``).
PAUSED_GATE = "paused"


def is_waiting(score: float) -> bool:
    """Whether a queue score is a parked job's."""
    return score >= PARKED_FLOOR


def local_gate(task: str) -> str:
    """The gate of a task's per-worker ``concurrency``."""
    return f"task:{task}"


def limit_gate(name: str, key: str) -> str:
    """The gate of one key of a fleet-wide :class:`~worker.taskdef.limits.Limit`."""
    return f"limit:{name}:{key}"


def rate_gate(name: str, key: str) -> str:
    """The gate of one key of a fleet-wide :class:`~worker.taskdef.limits.RateLimit`."""
    return f"rate:{name}:{key}"
