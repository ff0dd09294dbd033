"""Fairness between the keys of a queue (``@task(fair_by=...)``), as the queue's scores hold it (see
``lua/includes/fair.lua``).

A due job of a task with ``fair_by`` is not scored by its due time but by its key's place in a round robin:
each key keeps a *virtual start* (``jobq:fair:<queue>:<key>``, ms), and its next job is scored
``max(that start + FAIR_STEP_MS, the queue's head)``, the head being the earliest due score in the queue. So a
key's jobs are FIFO among themselves, and a key that comes with a few jobs while another has thousands
queued is scored at the head, next to the busy key's first jobs, and its jobs alternate with those.
"""

from __future__ import annotations

__all__ = ["FAIR_STEP_MS", "MAX_FAIR_KEY_LEN", "fair_prefix", "fair_state_key"]

#: How far apart two jobs of one key are scored (ms): a backlog of a million jobs spans one second of scores.
#: (``includes/fair.lua`` holds the same number; a test compares them.)
FAIR_STEP_MS = 0.001
#: The longest fairness key (characters of the payload field's text).
MAX_FAIR_KEY_LEN = 256


def fair_prefix(queue: str) -> str:
    """What a fairness key is appended to for its virtual start (the enqueue script builds those keys)."""
    return f"jobq:fair:{queue}:"


def fair_state_key(queue: str, key: str) -> str:
    """A key's virtual start in ``queue`` (ms, a string, with an expiry once its jobs are all due)."""
    return fair_prefix(queue) + key
