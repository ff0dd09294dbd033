"""Per-job options set by the producer and read by the worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .policy import resolve_timeout_s
from .registry import TaskDef

#: Reserved keyword argument in arq's job dict that carries jobq's per-job options.
OPTIONS_KWARG = "_jobq"


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options set at enqueue, carried in the reserved ``_jobq`` keyword argument."""

    timeout_s: float | None = None

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> JobOptions:
        """Remove and parse the reserved options argument; unknown or malformed options are ignored."""
        raw = kwargs.pop(OPTIONS_KWARG, None)
        if not isinstance(raw, dict):
            return cls()
        timeout = raw.get("timeout_s")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
            return cls(timeout_s=float(timeout))
        return cls()

    def to_kwargs(self) -> dict[str, Any]:
        """The keyword arguments that carry these options ({} when there are none)."""
        return {OPTIONS_KWARG: {"timeout_s": self.timeout_s}} if self.timeout_s is not None else {}


def timeout_limit_s(task_def: TaskDef[Any, Any], default_s: float) -> float:
    """The longest timeout a job of this task may ask for: the task's own (or the default)."""
    return resolve_timeout_s(None, task_def.timeout_s, default_s)
