"""Priorities within a queue, as the queue's scores hold them (see ``lua/includes/priority.lua``).

A due job of priority ``p`` (1 to :data:`MAX_PRIORITY`) is scored ``due - p * PRIORITY_STEP``: each
priority has a band of scores below every default-priority one, so the claim, which takes the lowest
scores first, takes higher priorities first and FIFO within one. A deferred job keeps its due time as its
score until it is due, and is then promoted into its band (the promotion set, on the ``promote`` gate).
Stock arq's jobs are scored by their due time: the default priority, 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from worker.protocol.keys import waiting_key
from worker.protocol.waiting import PARKED_FLOOR, WAITING_BASE

__all__ = [
    "DEFAULT_PRIORITY",
    "MAX_PRIORITY",
    "PRIORITY_STEP",
    "PROMOTE_GATE",
    "QueueScore",
    "promote_key",
]

#: 2**42 ms (139 years): each priority's band of scores (``includes/priority.lua`` holds the same number).
PRIORITY_STEP = 4398046511104
#: The highest priority: 255 bands stay below :data:`~worker.protocol.waiting.PARKED_FLOOR`.
MAX_PRIORITY = 255
#: A job's priority unless its task or its enqueue says otherwise (and every stock arq job's).
DEFAULT_PRIORITY = 0
#: The gate, in a queue's gate index, scored by the next promotion of a deferred prioritized job.
PROMOTE_GATE = "promote"


def promote_key(queue: str) -> str:
    """Sorted set of the deferred prioritized jobs of ``queue`` (``<priority>:<id>``), scored by due time."""
    return waiting_key(queue, PROMOTE_GATE)


@dataclass(frozen=True, slots=True)
class QueueScore:
    """What a job's score in its queue stands for."""

    due_ms: float  #: when the job is (or was) due
    priority: int  #: its band: the priority of a due job (a deferred one's shows 0 until it is promoted)
    parked: bool  #: waiting on a gate for a slot

    @classmethod
    def of(cls, score: float) -> QueueScore:
        """Decode a queue score."""
        parked = score >= PARKED_FLOOR
        value = score - WAITING_BASE if parked else score
        priority = max(0, -math.floor(value / PRIORITY_STEP)) if value < 0 or parked else 0
        return cls(value + priority * PRIORITY_STEP, priority, parked)
