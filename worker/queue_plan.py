"""Which queues one worker serves, and how it shares its slots among them (``JOBQ_QUEUES``).

``high,default,low`` is *strict* order: a queue is served only while every queue before it has no more due
jobs than the worker has free slots, so a busy ``high`` queue takes every slot. ``high=5,default=3,low=1`` is
*weighted*: while several queues have work, each gets a share of the worker's ``JOBQ_MAX_JOBS`` slots in
proportion to its weight (at least one slot each, so no queue starves); a queue alone with work gets them
all. Pure, so the settings can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.queue_names import queue_name_problem

#: The largest weight a queue may have.
MAX_WEIGHT = 1000


@dataclass(frozen=True, slots=True)
class QueuePlan:
    """The queues a worker serves, in order, and their weights (``None``: strict order)."""

    queues: tuple[str, ...]
    weights: tuple[int, ...] | None = None

    @property
    def strict(self) -> bool:
        """Whether the queues are served in strict order (else by weight)."""
        return self.weights is None

    @classmethod
    def single(cls, queue: str) -> QueuePlan:
        """One queue."""
        return cls((queue,))

    @classmethod
    def parse(cls, text: str) -> QueuePlan:
        """``a,b,c`` (strict) or ``a=5,b=3,c=1`` (weighted); a :class:`ValueError` says what is wrong."""
        items = [item.strip() for item in text.split(",")]
        if not text.strip() or any(not item for item in items):
            raise ValueError(f"must list queue names separated by commas (e.g. high,default,low), got {text!r}")
        names, weights = [], []
        for item in items:
            name, sep, weight = item.partition("=")
            name = name.strip()
            if problem := queue_name_problem(name):
                raise ValueError(f"the queue name {problem} (queue names here cannot contain ',' or '=')")
            if name in names:
                raise ValueError(f"lists queue {name!r} twice")
            names.append(name)
            if sep:
                weights.append(_weight(name, weight.strip()))
        if weights and len(weights) != len(names):
            raise ValueError(
                f"gives weights to some queues only: give every queue one (high=5,low=1) or none, got {text!r}"
            )
        return cls(tuple(names), tuple(weights) if weights else None)

    def __str__(self) -> str:
        if self.weights is None:
            return ",".join(self.queues)
        return ",".join(f"{q}={w}" for q, w in zip(self.queues, self.weights, strict=True))


def _weight(name: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WEIGHT:
        raise ValueError(f"the weight of queue {name!r} must be a whole number from 1 to {MAX_WEIGHT}, got {text!r}")
    return int(text)
