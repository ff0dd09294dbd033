"""Execution policies as data, and the pure functions that apply them.

A job's timeout is resolved once, by :func:`resolve_timeout_s`: the enqueue override, else the task's,
else the settings default; its retry policy is the task's, else the settings' (``TaskDef.retry_policy``,
with the task's ``max_tries`` winning). Backoff and the retry decision (:func:`decide`) are pure
functions of the policy, the error, the try number and a random draw, so they are tested without I/O.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from worker.errors import InvalidPayload, InvalidPolicy, JobTimeout, PermanentError, RetryLater, SettingsError
from worker.states import Outcome

#: Draws a float in [0, 1); injected so backoff is deterministic in tests.
RandomDraw = Callable[[], float]
ErrorTypes = tuple[type[BaseException], ...]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failing job is tried, how long it waits between tries, and which errors are final.

    The delay before try ``n + 1`` is drawn uniformly from ``[0, min(max_s, base_s * factor**(n-1))]``
    ("full jitter"), so a burst of failures does not come back as a burst of retries. Errors that are
    not instances of ``retry_on``, or are instances of ``give_up_on``, are permanent: the job goes to
    the dead letters at once. :class:`~worker.errors.PermanentError` and an invalid payload always are.
    """

    max_tries: int = 5
    backoff_base_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 300.0
    jitter: bool = True
    retry_on: ErrorTypes = (Exception,)
    give_up_on: ErrorTypes = ()

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise InvalidPolicy(f"RetryPolicy: max_tries must be at least 1, got {self.max_tries}")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise InvalidPolicy(
                "RetryPolicy: backoff_base_s and backoff_max_s must not be negative, "
                f"got {self.backoff_base_s} and {self.backoff_max_s}"
            )
        if self.backoff_factor < 1:
            raise InvalidPolicy(f"RetryPolicy: backoff_factor must be at least 1, got {self.backoff_factor}")

    def giving_up_on(self, extra: ErrorTypes) -> RetryPolicy:
        """This policy with ``extra`` error types added to ``give_up_on``."""
        added = tuple(t for t in extra if t not in self.give_up_on)
        return replace(self, give_up_on=self.give_up_on + added) if added else self

    def with_max_tries(self, max_tries: int | None) -> RetryPolicy:
        """This policy with another ``max_tries`` (unchanged when ``None``)."""
        return self if max_tries is None or max_tries == self.max_tries else replace(self, max_tries=max_tries)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after a try raised: what happened (``failure``) and what happens next."""

    failure: Outcome  #: FAILED or TIMED_OUT
    next: Outcome  #: RETRYING or DEAD_LETTERED
    delay_s: float | None  #: seconds until the next try, when RETRYING
    reason: str  #: one phrase for the log line


def backoff_ceiling_s(policy: RetryPolicy, failed_try: int) -> float:
    """The largest delay after try number ``failed_try`` (1-based) has failed."""
    if failed_try < 1:
        raise ValueError(f"try numbers start at 1, got {failed_try}")  # the engine counts from 1: a bug, not input
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


def is_permanent(exc: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``exc`` must never be retried under ``policy``."""
    if isinstance(exc, PermanentError | InvalidPayload):
        return True
    if policy.give_up_on and isinstance(exc, policy.give_up_on):
        return True
    if isinstance(exc, RetryLater | JobTimeout):
        return False
    return not isinstance(exc, policy.retry_on)


def decide(exc: BaseException, policy: RetryPolicy, failed_try: int, draw: RandomDraw = random.random) -> Decision:
    """Classify the error of try ``failed_try`` and decide between another try and the dead letters."""
    failure = Outcome.TIMED_OUT if isinstance(exc, JobTimeout) else Outcome.FAILED
    if is_permanent(exc, policy):
        return Decision(failure, Outcome.DEAD_LETTERED, None, "permanent error")
    if not should_retry(policy, failed_try):
        return Decision(failure, Outcome.DEAD_LETTERED, None, f"all {policy.max_tries} tries used")
    if isinstance(exc, RetryLater):
        return Decision(failure, Outcome.RETRYING, exc.after_s, "retry requested by the task")
    return Decision(failure, Outcome.RETRYING, backoff_delay_s(policy, failed_try, draw), "backoff")


def resolve_timeout_s(override_s: float | None, task_s: float | None, default_s: float) -> float:
    """Enqueue override, else task default, else settings default."""
    if override_s is not None:
        return override_s
    if task_s is not None:
        return task_s
    return default_s


def import_error_types(names: Iterable[str], setting: str) -> ErrorTypes:
    """Exception classes from dotted names (``ValueError``, ``mypkg.errors.Gone``); errors name ``setting``."""
    found: list[type[BaseException]] = []
    for name in names:
        module_name, _, attr = name.rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name or "builtins"), attr)
        except (ImportError, AttributeError):
            raise SettingsError(f"{setting}: cannot import exception class {name!r}") from None
        if not (isinstance(value, type) and issubclass(value, BaseException)):
            raise SettingsError(f"{setting}: {name!r} is not an exception class")
        found.append(value)
    return tuple(found)
