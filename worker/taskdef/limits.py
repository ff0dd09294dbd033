"""Limits a task declares across the whole fleet: at most N jobs at once per key (:class:`Limit`), and at
most a rate of job starts per key (:class:`RateLimit`).

The engine enforces them (:mod:`worker.engine.limiter`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.errors import TaskDefinitionError

#: The one key every job of a ``RateLimit`` without a ``key`` function counts against.
ONE_KEY = "all"
#: The longest rate-limit key a producer hands to the claim (a longer one is left to the worker to find).
MAX_CLAIMED_KEY_LEN = 512


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``max_concurrent`` jobs per key across all workers.

    ``key`` maps a job's payload to the key it counts against, e.g. ``lambda p: urlsplit(p.url).hostname``
    for "at most 4 concurrent fetches per host". ``name`` separates limits that share keys.
    """

    name: str
    max_concurrent: int
    key: Callable[[Any], str] = lambda payload: "all"

    def __post_init__(self) -> None:
        if self.max_concurrent < 1:
            raise TaskDefinitionError(
                f"Limit {self.name!r}: max_concurrent must be at least 1, got {self.max_concurrent}"
            )
        if not self.name or ":" in self.name:
            raise TaskDefinitionError(f"Limit name must be non-empty and contain no ':', got {self.name!r}")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``per_s`` job starts a second per key across all workers, with up to ``burst`` at once.

    Enforced in Redis by GCRA on the server's clock: over any window of ``w`` seconds at most
    ``per_s * w + burst`` jobs of one key start. ``key`` maps a job's payload to its key, e.g.
    ``lambda p: p.tenant`` for "20 calls a second per tenant"; without it every job counts against one key,
    ``"all"``. ``name`` separates rate limits that share keys. A job over its rate waits, parked, until its
    turn: the wait is not a try. The claim checks the rate itself (before any lease or try is counted) when it
    knows the key: the fixed one, or the one the producer found (a producer that knows the task).
    """

    name: str
    per_s: float
    burst: int = 1
    key: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or ":" in self.name:
            raise TaskDefinitionError(
                f"RateLimit name must be a non-empty text without ':', got {self.name!r:.60}; "
                "name the limit, e.g. RateLimit('api', per_s=10)"
            )
        per_s = self.per_s
        if isinstance(per_s, bool) or not isinstance(per_s, int | float) or not math.isfinite(per_s) or per_s <= 0:
            raise TaskDefinitionError(
                f"RateLimit {self.name!r}: per_s must be a positive number of job starts a second, got {per_s!r:.60}"
                " (for one job every 10 s, pass per_s=0.1)"
            )
        if type(self.burst) is not int or self.burst < 1:
            raise TaskDefinitionError(
                f"RateLimit {self.name!r}: burst must be an integer of at least 1 (how many jobs may start at "
                f"once), got {self.burst!r:.60}"
            )
        if self.key is not None and not callable(self.key):
            raise TaskDefinitionError(
                f"RateLimit {self.name!r}: key must be a function of the payload returning its key (or none: "
                f"one key for every job), got {self.key!r:.60}"
            )

    @property
    def fixed_key(self) -> str | None:
        """The one key every job counts against when no ``key`` function is given (``"all"``), else ``None``."""
        return ONE_KEY if self.key is None else None

    def key_of(self, payload: Any) -> str:
        """The key ``payload`` counts against."""
        return ONE_KEY if self.key is None else str(self.key(payload))

    def key_for_claim(self, payload: Any) -> str | None:
        """The key a producer writes among the job's options, for the claim to check the rate with: ``None``
        when it has none to give (a fixed key, which the claim knows; a key function that fails here; a key
        over 512 characters): the worker then finds the key itself, as it always checks it."""
        if self.key is None:
            return None
        try:
            key = self.key_of(payload)
        except Exception:  # the worker runs the key function again, and reports its error on the job
            return None
        return key if len(key) <= MAX_CLAIMED_KEY_LEN else None

    def claimed_key_holds(self, payload: Any, claimed_key: str | None) -> bool:
        """Whether a start the claim admitted under ``claimed_key`` (the producer's key for a keyed limit) counted
        against ``payload``'s own key (a producer running other code may have found another one)."""
        if self.key is None:
            return True
        try:
            return claimed_key is not None and self.key_of(payload) == claimed_key
        except Exception:
            return False  # the worker's own check runs the key function again, and reports its error

    @property
    def interval_ms(self) -> float:
        """The time between two starts at the sustained rate (ms)."""
        return 1000.0 / self.per_s
