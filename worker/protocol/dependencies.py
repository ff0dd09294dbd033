"""Jobs that wait for other jobs: the records of ``worker/protocol/lua/includes/deps.lua``, as Python reads them.

A job given ``depends_on``, and every workflow step after the first ones, is written *blocked*: its envelope is
there but it is in no queue. ``jobq:wait:<id>`` counts the dependencies it still waits for; each dependency lists
its waiting jobs in ``jobq:next:<id>``, and its end (fenced, in the same script as its result) releases them: the
one whose count reaches 0 is queued. A dependency that fails for good cancels what waits on it, and a replay of it
that succeeds resumes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from worker.protocol.keys import MARKER_PREFIX, NEXT_PREFIX, WAIT_PREFIX

__all__ = ["CANCELLED", "DEP_PREFIXES", "SEPARATOR", "Blocked", "dependents_list"]

#: Added to a blocked job's count while it is cancelled (includes/deps.lua's CANCELLED).
CANCELLED = 1_000_000_000
#: What follows each id in a list of dependents (a job id holds no space: worker.client.checks).
SEPARATOR = " "
#: The scripts' ARGV naming the dependency keys' prefixes: dependents, blocked job, marker.
DEP_PREFIXES = json.dumps([NEXT_PREFIX, WAIT_PREFIX, MARKER_PREFIX])


def dependents_list(ids: list[str]) -> str:
    """The text of a ``jobq:next:<id>`` list holding ``ids``."""
    return "".join(i + SEPARATOR for i in ids)


@dataclass(frozen=True, slots=True)
class Blocked:
    """A blocked job's record: the dependencies it still waits for, and what cancelled it (if it is)."""

    waiting_for: int
    cancelled_by: str | None

    @classmethod
    def of(cls, n: bytes | str | None, cause: bytes | str | None) -> Blocked | None:
        """The record from the hash's ``n`` and ``cause`` fields (``None`` when there is none)."""
        try:
            count = int(n) if n is not None else None
        except ValueError:
            return None
        if count is None:
            return None
        if count >= CANCELLED:
            text = cause.decode(errors="replace") if isinstance(cause, bytes) else cause
            return cls(count - CANCELLED, text or "?")
        return cls(count, None)
