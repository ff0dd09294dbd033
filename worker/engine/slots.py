"""How many jobs a worker's loop may claim now: its own slots, or its share of a process serving several queues.

A worker serving one queue claims into every free slot of ``JOBQ_MAX_JOBS`` (:class:`OwnSlots`). A process
serving several queues (``JOBQ_QUEUES``) runs one loop per queue, a *lane*, and the lanes share the slots
through one :class:`SlotBroker`:

- **strict** (``high,default,low``): a lane claims only while every lane before it has *checked* its queue
  since a slot last freed and found no more due jobs than it could take (it is not *hungry*);
- **weighted** (``high=5,default=3,low=1``): while other lanes are hungry or have not checked yet, a lane
  claims up to its share of the slots, by weight among those lanes (at least one slot: none starves, largest
  remainders first); a lane alone with work takes every free slot.

A lane that must check is made to claim even when its marker said nothing (its marker is not watched while
the lane may not claim, so a job enqueued meanwhile woke nobody in it): when a lower lane is busy, each freed
slot costs one claim per lane before it (an empty claim is one script call). Every lane is woken when a slot
frees, and the lanes after one that found its queue drained are woken too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from worker.queue_plan import QueuePlan


class SlotShare(Protocol):
    """What a worker's loop asks before it claims, and tells after (one per lane)."""

    def free(self) -> int:
        """How many jobs the lane may claim now."""
        ...

    def must_check(self) -> bool:
        """Whether the lane must claim now, even if nothing says it has work."""
        ...

    def claimed(self, *, hungry: bool) -> None:
        """The lane claimed: ``hungry`` when it took all it asked for (more may be due)."""
        ...

    def freed(self) -> None:
        """A slot of the lane freed."""
        ...


class OwnSlots:
    """A worker serving one queue: every free slot of its own."""

    def __init__(self, running: Callable[[], int], max_jobs: int) -> None:
        self._running = running
        self._max_jobs = max_jobs

    def free(self) -> int:
        """Slots not taken."""
        return self._max_jobs - self._running()

    def must_check(self) -> bool:
        """Never: the marker and the pacing say when to claim."""
        return False

    def claimed(self, *, hungry: bool) -> None:
        """Nothing to share."""

    def freed(self) -> None:
        """Nothing to share."""


@dataclass(slots=True)
class _Lane:
    running: Callable[[], int]  #: the lane's slots taken now
    wake: Callable[[], None]  #: wakes the lane's loop
    weight: int
    hungry: bool = False
    unchecked: bool = True  #: a slot freed (or the lane started) since the lane last claimed


@dataclass(slots=True)
class SlotBroker:
    """The slots of one process, shared by its lanes as its :class:`~worker.queue_plan.QueuePlan` says."""

    plan: QueuePlan
    max_jobs: int
    _lanes: list[_Lane] = field(default_factory=list)

    def join(self, running: Callable[[], int], wake: Callable[[], None]) -> SlotShare:
        """Add the next lane of the plan (in the plan's order); return its view of the slots."""
        index = len(self._lanes)
        if index >= len(self.plan.queues):
            raise ValueError(f"the plan {self.plan} has {len(self.plan.queues)} queues; a lane too many joined")
        weight = 1 if self.plan.weights is None else self.plan.weights[index]
        self._lanes.append(_Lane(running, wake, weight))
        return _LaneShare(self, index)

    def spare(self) -> int:
        """Slots no lane holds."""
        return self.max_jobs - sum(lane.running() for lane in self._lanes)

    def free_for(self, index: int) -> int:
        """How many jobs lane ``index`` may claim now (see the module's docstring)."""
        spare = self.spare()
        if spare <= 0:
            return 0
        lanes = self._lanes
        if self.plan.strict:
            ahead = lanes[:index]
            return 0 if any(lane.hungry or lane.unchecked for lane in ahead) else spare
        contending = [i for i, lane in enumerate(lanes) if i != index and (lane.hungry or lane.unchecked)]
        if not contending:
            return spare
        quotas = shares([lanes[i].weight for i in (index, *contending)], self.max_jobs)
        return max(0, min(spare, quotas[0] - lanes[index].running()))

    def unchecked(self, index: int) -> bool:
        """Whether lane ``index`` has not claimed since a slot last freed (it must, before lanes after it)."""
        return self._lanes[index].unchecked

    def claimed(self, index: int, *, hungry: bool) -> None:
        """Lane ``index`` claimed; when it found its queue drained, the lanes after it may claim now."""
        lane = self._lanes[index]
        lane.unchecked = False
        was_hungry, lane.hungry = lane.hungry, hungry
        if was_hungry and not hungry:
            for other in self._lanes[index + 1 :] if self.plan.strict else self._lanes:
                other.wake()

    def freed(self) -> None:
        """A slot freed: every lane checks its queue again (the first lanes first, as the plan says)."""
        for lane in self._lanes:
            lane.unchecked = True
            lane.wake()


@dataclass(frozen=True, slots=True)
class _LaneShare:
    broker: SlotBroker
    index: int

    def free(self) -> int:
        return self.broker.free_for(self.index)

    def must_check(self) -> bool:
        return self.broker.unchecked(self.index)

    def claimed(self, *, hungry: bool) -> None:
        self.broker.claimed(self.index, hungry=hungry)

    def freed(self) -> None:
        self.broker.freed()


def shares(weights: Sequence[int], slots: int) -> list[int]:
    """``slots`` shared by ``weights``: at least one each (when there are enough), largest remainders first."""
    total = sum(weights)
    exact = [slots * w / total for w in weights]
    given = [max(1, int(x)) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    for i in by_remainder[: max(0, slots - sum(given))]:
        given[i] += 1
    return given
