"""Execution policies as data, and the pure functions that apply them.

A task's effective policy is resolved as "enqueue override, else task default, else settings
default" (:func:`resolve_timeout_s`). Backoff is a pure function of the policy, the try number and
a random draw, so it is tested without I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

#: Draws a float in [0, 1); injected so backoff is deterministic in tests.
RandomDraw = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failing job is tried and how long it waits between tries.

    The delay before try ``n + 1`` is drawn uniformly from ``[0, min(max_s, base_s * factor**(n-1))]``
    ("full jitter"), so a burst of failures does not come back as a burst of retries.
    """

    max_tries: int = 5
    backoff_base_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {self.max_tries}")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff_base_s and backoff_max_s must not be negative")
        if self.backoff_factor < 1:
            raise ValueError(f"backoff_factor must be at least 1, got {self.backoff_factor}")


def backoff_ceiling_s(policy: RetryPolicy, failed_try: int) -> float:
    """The largest delay after try number ``failed_try`` (1-based) has failed."""
    if failed_try < 1:
        raise ValueError(f"try numbers start at 1, got {failed_try}")
    # Cap the exponent first: factor**n overflows a float long before it matters.
    exponent = min(failed_try - 1, 64)
    return min(policy.backoff_max_s, policy.backoff_base_s * policy.backoff_factor**exponent)


def backoff_delay_s(policy: RetryPolicy, failed_try: int, draw: RandomDraw = random.random) -> float:
    """The delay before the next try after try ``failed_try`` has failed."""
    ceiling = backoff_ceiling_s(policy, failed_try)
    return ceiling * draw() if policy.jitter else ceiling


def should_retry(policy: RetryPolicy, failed_try: int) -> bool:
    """Whether another try is allowed after try ``failed_try`` has failed."""
    return failed_try < policy.max_tries


def resolve_timeout_s(override_s: float | None, task_s: float | None, default_s: float) -> float:
    """Enqueue override, else task default, else settings default."""
    if override_s is not None:
        return override_s
    if task_s is not None:
        return task_s
    return default_s
