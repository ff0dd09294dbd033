"""Jobs waiting for a concurrency slot, as the queue holds them (see ``lua/includes/waiting.lua``).

A job parked on a full limit's gate stays in its queue, scored :data:`WAITING_BASE` plus its due time: far
beyond any due time, so no claim takes it and stock arq sees a job deferred far ahead, while its status,
an abort or a delete still find it. Its id also sits in the gate's waiting set until a freed slot (or the
gate's re-check) puts it back at its due time.
"""

from __future__ import annotations

__all__ = ["WAITING_BASE", "due_of", "is_waiting", "limit_gate", "local_gate"]

#: 2**52: every score at or above it is a parked job (``includes/waiting.lua`` holds the same number).
#: A due time in ms stays below 2**52 until the year 144,683, and the sum stays exact in a double.
WAITING_BASE = 4503599627370496


def is_waiting(score: float) -> bool:
    """Whether a queue score is a parked job's."""
    return score >= WAITING_BASE


def due_of(score: float) -> float:
    """The due time (ms) a queue score stands for, parked or not."""
    return score - WAITING_BASE if score >= WAITING_BASE else score


def local_gate(task: str) -> str:
    """The gate of a task's per-worker ``concurrency``."""
    return f"task:{task}"


def limit_gate(name: str, key: str) -> str:
    """The gate of one key of a fleet-wide :class:`~worker.taskdef.limits.Limit`."""
    return f"limit:{name}:{key}"
