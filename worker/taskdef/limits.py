"""Concurrency limits a task declares: at most N jobs per key across the whole fleet (:class:`Limit`).

The engine enforces them (:mod:`worker.engine.limiter`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.errors import TaskDefinitionError


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
