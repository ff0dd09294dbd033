"""Deduplication modes a task declares (``@task(dedup=...)``): :class:`UniqueFor`, :class:`Throttle`, :class:`Debounce`.

Each mode maps a job's payload to a key (``key=lambda p: p.user_id``); jobs of one task with the same key are
deduplicated as the mode says. The producer enforces them in one script call per job
(``worker/protocol/lua/enqueue_dedup.lua``, :mod:`worker.client.dedup_write`); the lock of a key is the string
``jobq:dedup:<task>:<key>`` holding the id of the job that holds it. Nothing here touches Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from worker.errors import TaskDefinitionError

__all__ = ["MAX_WINDOW_S", "Debounce", "DedupMode", "DedupOutcome", "Throttle", "UniqueFor", "whole_task"]

#: The longest window a mode takes (365 days): its lock's expiry stays a small integer of milliseconds.
MAX_WINDOW_S = 365 * 86400.0


def whole_task(payload: Any) -> str:
    """The default key: one key for every job of the task."""
    return "all"


class DedupOutcome(StrEnum):
    """What deduplication did with an enqueue that wrote no new job (``JobHandle.deduplicated``)."""

    DROPPED = "dropped"  #: nothing written; the handle is the job holding the key
    REPLACED = "replaced"  #: a Debounce: the pending job got the new payload and start time; the handle is it


@dataclass(frozen=True, slots=True)
class _Mode:
    window_s: float
    key: Callable[[Any], str | int] = whole_task

    #: The mode's name in Redis, the script and the ``mode`` label of ``jobq_jobs_deduplicated_total``.
    mode: ClassVar[str] = ""

    def __post_init__(self) -> None:
        kind, window = type(self).__name__, self.window_s
        if isinstance(window, bool) or not isinstance(window, int | float) or not 0 < window <= MAX_WINDOW_S:
            raise TaskDefinitionError(
                f"{kind}: window_s must be a positive number of seconds (at most {MAX_WINDOW_S:.0f}), got "
                f"{window!r:.40}; e.g. {kind}(60, key=lambda p: p.user_id)"
            )
        if not callable(self.key):
            raise TaskDefinitionError(
                f"{kind}: key must be a function of the payload returning a str or int, got {self.key!r:.40}; "
                f"e.g. {kind}({window:g}, key=lambda p: p.user_id)"
            )

    @property
    def window_ms(self) -> int:
        """The window in milliseconds (at least 1)."""
        return max(1, round(self.window_s * 1000))


@dataclass(frozen=True, slots=True)
class UniqueFor(_Mode):
    """At most one open job per key: an enqueue is dropped while the key's holder is pending, waiting, retrying or
    running, and at most ``window_s`` after the holder's enqueue (Sidekiq's ``unique_for``)."""

    mode: ClassVar[str] = "unique_for"


@dataclass(frozen=True, slots=True)
class Throttle(_Mode):
    """At most one job per key per ``window_s``: enqueues within the window of the key's last job are dropped,
    whether that job finished or not."""

    mode: ClassVar[str] = "throttle"


@dataclass(frozen=True, slots=True)
class Debounce(_Mode):
    """Each job starts ``window_s`` after the last enqueue of its key: an enqueue while the key's job is still
    pending replaces that job's payload and pushes its start; once it started (or waits for a slot), the next
    enqueue writes a fresh job."""

    mode: ClassVar[str] = "debounce"


#: A deduplication mode of ``@task(dedup=...)``.
DedupMode = UniqueFor | Throttle | Debounce
