"""The checks ``@task`` makes of its options at import time: each bad one is a :class:`TaskDefinitionError`
naming the task and the option."""

from __future__ import annotations

from typing import Any

from worker.errors import TaskDefinitionError
from worker.protocol.priority import MAX_PRIORITY
from worker.queue_names import queue_name_problem
from worker.taskdef.dedup import Debounce, Throttle, UniqueFor
from worker.taskdef.limits import RateLimit


def check_task_options(
    task_name: str, payload_model: type, *, timeout_s: float | None, concurrency: int | None, max_tries: int | None,
    result_ttl_s: float | None, priority: Any, dedup: object, queue: str | None, fair_by: Any, rate_limit: object,
) -> None:  # fmt: skip
    """Raise :class:`TaskDefinitionError` for the first option of ``@task`` that is not what it may be."""
    _positive(task_name, "timeout_s", timeout_s)
    _positive(task_name, "concurrency", concurrency)
    if max_tries is not None and max_tries < 1:
        raise TaskDefinitionError(f"task {task_name!r}: max_tries must be at least 1, got {max_tries}")
    if result_ttl_s is not None and result_ttl_s < 0:
        raise TaskDefinitionError(f"task {task_name!r}: result_ttl_s must not be negative")
    if type(priority) is not int or not 0 <= priority <= MAX_PRIORITY:
        raise TaskDefinitionError(
            f"task {task_name!r}: priority must be an integer from 0 (the default) to {MAX_PRIORITY} "
            f"(higher runs first), got {priority!r}"
        )
    if dedup is not None and not isinstance(dedup, UniqueFor | Throttle | Debounce):
        raise TaskDefinitionError(
            f"task {task_name!r}: dedup must be UniqueFor(...), Throttle(...) or Debounce(...) from worker, "
            f"got {dedup!r:.60}"
        )
    if queue is not None and (problem := queue_name_problem(queue)) is not None:
        raise TaskDefinitionError(f"task {task_name!r}: queue {problem}")
    _check_fair_by(task_name, fair_by, payload_model, priority, dedup)
    if rate_limit is not None and not isinstance(rate_limit, RateLimit):
        raise TaskDefinitionError(
            f"task {task_name!r}: rate_limit must be a RateLimit(name, per_s, burst=..., key=...) from worker, "
            f"got {rate_limit!r:.60}"
        )


def _positive(name: str, setting: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise TaskDefinitionError(f"task {name!r}: {setting} must be positive, got {value}")


def _check_fair_by(task_name: str, fair_by: str | None, payload_model: type, priority: int, dedup: object) -> None:
    if fair_by is None:
        return
    fields = getattr(payload_model, "model_fields", {})
    if not isinstance(fair_by, str) or fair_by not in fields:
        raise TaskDefinitionError(
            f"task {task_name!r}: fair_by must name a field of {payload_model.__name__} "
            f"({', '.join(fields) or 'it has none'}), got {fair_by!r:.60}"
        )
    if priority or dedup is not None:
        raise TaskDefinitionError(
            f"task {task_name!r}: fair_by does not combine with {'priority' if priority else 'dedup'}: "
            "put the fairly served jobs on a task (or a queue) of their own"
        )
