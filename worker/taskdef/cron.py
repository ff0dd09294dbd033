"""Schedules a task module declares: cron expressions or fixed intervals, run exactly once per tick.

The engine enqueues the ticks (:mod:`worker.engine.scheduler`).

A :class:`Schedule` names a task, a timing and a payload. Every worker computes the ticks on its
own, and enqueues each tick as the job ``cron:<name>:<tick ms>`` through one Lua script that
refuses any tick not later than the last one recorded in ``jobq:cron:<queue>:<name>``. So each tick
is enqueued once across the fleet, whatever the number of workers, their restarts, or a few seconds
of clock difference between them (the tick ids come from the schedule, not from a worker's clock).

Ticks missed while no worker ran (more than ``JOBQ_CRON_MISFIRE_GRACE_S`` late) follow the
schedule's misfire policy: ``run_once`` runs the latest missed tick once, ``skip`` waits for the next.
``JOBQ_CRON`` overrides a schedule's timing or turns it off: ``{"nightly": "0 3 * * *", "stats": "off"}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from worker.errors import InvalidPayload, InvalidPolicy, SettingsError, TaskDefinitionError
from worker.taskdef.modules import import_modules
from worker.taskdef.registry import TaskDef

Misfire = Literal["run_once", "skip"]
_EVERY = re.compile(r"^every\s+(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The longest interval of an ``every`` schedule; longer ones would overflow datetime arithmetic.
MAX_INTERVAL_S = 100 * 365 * 86400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Timing(Protocol):
    """When a schedule fires."""

    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after ``t``."""

    def latest_at_or_before(self, t: datetime) -> datetime:
        """The last tick at or before ``t``."""

    def describe(self) -> str:
        """How the timing is written."""


@dataclass(frozen=True, slots=True)
class Every:
    """Every ``seconds``, on multiples of the interval since the Unix epoch (so all workers agree)."""

    seconds: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and 0 < self.seconds <= MAX_INTERVAL_S):
            raise InvalidPolicy(
                f"an interval must be a positive number of seconds up to {MAX_INTERVAL_S:g} (100 years), "
                f"got {self.seconds!r}"
            )

    # Ticks are computed in whole microseconds (datetime's resolution): float division would put a
    # tick a rounding error away from t, and then "next after t" could be t itself.
    def _step(self) -> timedelta:
        return timedelta(microseconds=max(1, round(self.seconds * 1_000_000)))

    def next_after(self, t: datetime) -> datetime:
        return self.latest_at_or_before(t) + self._step()

    def latest_at_or_before(self, t: datetime) -> datetime:
        step = self._step()
        return _EPOCH + ((t - _EPOCH) // step) * step

    def describe(self) -> str:
        return f"every {self.seconds:g}s"


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression (5 fields, or 6 with seconds first), evaluated in ``timezone``."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            CronSim(self.expression, datetime.now(self._zone()))
        except CronSimError as exc:
            raise InvalidPolicy(f"bad cron expression {self.expression!r}: {exc}") from None

    def _zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidPolicy(
                f"unknown time zone {self.timezone!r}; use an IANA name such as 'Europe/Paris'"
            ) from None

    def next_after(self, t: datetime) -> datetime:
        # CronSim starts after the whole second of t; a tick exactly at t is not "after" it.
        tick: datetime = next(CronSim(self.expression, t.astimezone(self._zone())))
        return tick.astimezone(UTC)

    def latest_at_or_before(self, t: datetime) -> datetime:
        # CronSim in reverse yields ticks strictly before a whole second: start just after t's second.
        start = t.astimezone(self._zone()).replace(microsecond=0) + timedelta(seconds=1)
        tick: datetime = next(CronSim(self.expression, start, reverse=True))
        return tick.astimezone(UTC)

    def describe(self) -> str:
        return self.expression if self.timezone == "UTC" else f"{self.expression} ({self.timezone})"


def parse_timing(text: str, timezone: str = "UTC") -> Timing:
    """``every 30s`` / ``every 5m`` / ``every 1h``, or a cron expression; :class:`InvalidPolicy` otherwise."""
    match = _EVERY.match(text.strip().lower())
    if match:
        return Every(float(match.group(1)) * _UNIT_S[match.group(2)])
    return Cron(text.strip(), timezone)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Run ``task`` with ``payload`` on a cron expression or every ``every_s`` seconds.

    Declare it at module level next to the task; the worker finds it like it finds tasks.
    """

    task: TaskDef[Any, Any]
    cron: str | None = None
    every_s: float | None = None
    payload: Any = field(default_factory=dict)
    name: str = ""
    misfire: Misfire = "run_once"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        name = self.name or self.task.name
        object.__setattr__(self, "name", name)
        if (self.cron is None) == (self.every_s is None):
            raise TaskDefinitionError(f"schedule {name!r}: give exactly one of cron=... or every_s=...")
        if self.misfire not in ("run_once", "skip"):
            raise TaskDefinitionError(f"schedule {name!r}: misfire must be 'run_once' or 'skip'")
        try:
            self.timing()
        except InvalidPolicy as exc:
            raise TaskDefinitionError(f"schedule {name!r}: {exc}") from None
        try:
            self.task.validate(self.payload)  # a bad payload fails at import, not at 3 a.m.
        except InvalidPayload as exc:
            raise TaskDefinitionError(f"schedule {name!r}: {exc}") from None

    def timing(self) -> Timing:
        """The declared timing."""
        if self.every_s is not None:
            return Every(self.every_s)
        return Cron(str(self.cron), self.timezone)


@dataclass
class ActiveSchedule:
    """A schedule as one worker runs it: its effective timing and the next tick it will enqueue."""

    schedule: Schedule
    timing: Timing
    next_tick: datetime | None = None


def effective_schedules(schedules: Iterable[Schedule], overrides: dict[str, str]) -> list[ActiveSchedule]:
    """Apply ``JOBQ_CRON`` (name -> timing, or "off"); unknown names and bad timings are settings errors."""
    by_name = {s.name: s for s in schedules}
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        raise SettingsError(f"JOBQ_CRON names unknown schedules {unknown}; known: {sorted(by_name) or 'none'}")
    active = []
    for name, s in sorted(by_name.items()):
        text = overrides.get(name)
        if text is not None and text.strip().lower() == "off":
            continue
        try:
            timing = s.timing() if text is None else parse_timing(text, s.timezone)
        except InvalidPolicy as exc:
            raise SettingsError(f"JOBQ_CRON[{name!r}]: {exc}; use a cron expression, 'every 30s' or 'off'") from None
        active.append(ActiveSchedule(s, timing))
    return active


def schedules_from_modules(modules: Iterable[str]) -> list[Schedule]:
    """The schedules declared in ``modules`` (the task modules); two with one name are an error."""
    found: dict[str, Schedule] = {}
    for module in import_modules(modules):
        for value in vars(module).values():
            if isinstance(value, Schedule):
                other = found.setdefault(value.name, value)
                if other is not value:
                    raise TaskDefinitionError(f"two schedules are named {value.name!r}; give one of them name=...")
    return list(found.values())
