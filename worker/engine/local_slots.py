"""The per-worker ``concurrency`` of a lane's tasks: how many slots of each are free, and which freed slots still
owe the queue one waiting job back.

The claim reads both (see ``lua/claim.lua``): it takes no more jobs of a task than the task has free slots here,
and parks the others it finds in place, on the task's gate, before any lease or try is counted; and it puts one
job back from the gate for each slot that freed since the last claim. So a job waiting for a slot costs two
sorted-set writes shared by the whole claim, not a park and an unpark call of its own. A job the claim could not
classify (an envelope it cannot read, two lanes running one task) still finds the slot full when it starts, and
waits through ``park.lua``: :meth:`try_take` is what decides.
"""

from __future__ import annotations

from collections import Counter

from worker.taskdef.registry import TaskRegistry

__all__ = ["LocalSlots"]


class LocalSlots:
    """The slots of the tasks with a per-worker ``concurrency``, in one lane."""

    def __init__(self, registry: TaskRegistry) -> None:
        self._size = {t.name: t.concurrency for t in registry if t.concurrency}
        self._taken = dict.fromkeys(self._size, 0)
        self._freed: Counter[str] = Counter()  # task -> slots freed whose waiting job is not put back yet

    def __repr__(self) -> str:
        return f"LocalSlots(free={self.free()}, owed={dict(self._freed)})"

    @property
    def any(self) -> bool:
        """Whether any task of the lane has a per-worker concurrency."""
        return bool(self._size)

    def limits(self, task: str) -> bool:
        """Whether ``task`` has a per-worker concurrency."""
        return task in self._size

    def has_free(self, task: str) -> bool:
        """Whether ``task`` has a per-worker concurrency with a slot free now."""
        return task in self._size and self._taken[task] < self._size[task]

    def try_take(self, task: str) -> bool:
        """Take one slot of ``task`` (``False``, taking none, when all are taken); ``task`` must be limited."""
        if not self.has_free(task):
            return False
        self._taken[task] += 1
        return True

    def give_back(self, task: str) -> None:
        """A slot of ``task`` freed: the next claim puts one job waiting on its gate back."""
        self._taken[task] -= 1
        self._freed[task] += 1

    def owe(self, task: str) -> None:
        """A job was parked on ``task``'s gate while a slot was free (so no freed slot will bring it back): the
        next claim puts one back."""
        self._freed[task] += 1

    def free(self) -> dict[str, int]:
        """Free slots per limited task."""
        return {task: size - self._taken[task] for task, size in self._size.items()}

    @property
    def owed(self) -> bool:
        """Whether a freed slot still owes the queue a waiting job back (the lane should claim)."""
        return bool(self._freed)

    def take_owed(self) -> dict[str, int]:
        """The waiting jobs owed, by task, now handed to a claim (or an unpark): forgotten here."""
        owed = dict(self._freed)
        self._freed.clear()
        return owed

    def restore_owed(self, owed: dict[str, int]) -> None:
        """What :meth:`take_owed` handed to a claim that failed before it ran: owed again."""
        self._freed.update(owed)
