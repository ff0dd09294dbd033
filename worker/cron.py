"""Schedules: cron expressions or fixed intervals, declared next to the tasks, run exactly once per tick.

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

import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arq.connections import ArqRedis
from cronsim import CronSim, CronSimError

from .errors import InvalidPayload, SettingsError, TaskDefinitionError
from .keys import JobKeys
from .registry import TaskDef, import_modules
from .serialization import EnvelopeCodec

logger = logging.getLogger("jobq.cron")

Misfire = Literal["run_once", "skip"]
_EVERY = re.compile(r"^every\s+(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The longest interval of an ``every`` schedule; longer ones would overflow datetime arithmetic.
MAX_INTERVAL_S = 100 * 365 * 86400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# KEYS: ledger, job, result, queue, abort.  ARGV: tick (ms), job id, score (ms), job TTL (ms), envelope.
# Returns 1 when this call enqueued the tick, 0 when the tick (or a later one) was enqueued before.
ENQUEUE_TICK_LUA = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if last >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
redis.call('PSETEX', KEYS[2], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
redis.call('DEL', KEYS[5])
return 1
"""


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
            raise ValueError(
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
            raise ValueError(f"bad cron expression {self.expression!r}: {exc}") from None

    def _zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None

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
    """``every 30s`` / ``every 5m`` / ``every 1h``, or a cron expression; ``ValueError`` otherwise."""
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
        except ValueError as exc:
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
        except ValueError as exc:
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


def ledger_key(queue: str, name: str) -> str:
    """The last tick enqueued for one schedule on one queue (ms since the epoch)."""
    return f"jobq:cron:{queue}:{name}"


def tick_job_id(name: str, tick: datetime) -> str:
    """The id of the job that runs one tick."""
    return f"cron:{name}:{round(tick.timestamp() * 1000)}"


class CronScheduler:
    """Enqueues the due ticks of the active schedules; every worker runs one."""

    def __init__(
        self,
        redis: ArqRedis,
        codec: EnvelopeCodec,
        queue: str,
        schedules: list[ActiveSchedule],
        *,
        misfire_grace_s: float,
        lookahead_s: float,
        job_expires_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.schedules = schedules
        self._redis = redis
        self._codec = codec
        self._queue = queue
        self._grace = timedelta(seconds=misfire_grace_s)
        self._lookahead = timedelta(seconds=lookahead_s)
        self._expires_ms = round(job_expires_s * 1000)
        self._clock = clock
        self._enqueue = redis.register_script(ENQUEUE_TICK_LUA)

    async def last_tick(self, name: str) -> datetime | None:
        """The last tick of ``name`` enqueued by any worker."""
        raw = await self._redis.get(ledger_key(self._queue, name))
        return None if raw is None else datetime.fromtimestamp(int(raw) / 1000, tz=UTC)

    async def enqueue_due(self) -> int:
        """Enqueue every tick due now (or within the look-ahead); return how many this worker enqueued."""
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        enqueued = 0
        for active in self.schedules:
            if active.next_tick is None:
                last = await self.last_tick(active.schedule.name)
                active.next_tick = active.timing.next_after(last or now)
            if active.next_tick < now - self._grace:
                active.next_tick = self._after_misfire(active, now)
            while active.next_tick <= now + self._lookahead:
                enqueued += await self._enqueue_tick(active.schedule, active.next_tick)
                active.next_tick = active.timing.next_after(active.next_tick)
        return enqueued

    def _after_misfire(self, active: ActiveSchedule, now: datetime) -> datetime:
        missed_from = active.next_tick
        if active.schedule.misfire == "skip":
            resume = active.timing.next_after(now)
            logger.warning("schedule %s missed its ticks since %s; skipping them", active.schedule.name, missed_from)
            return resume
        latest = active.timing.latest_at_or_before(now)
        logger.warning(
            "schedule %s missed its ticks since %s; running the latest (%s) once",
            active.schedule.name,
            missed_from,
            latest,
        )
        return latest

    async def _enqueue_tick(self, schedule: Schedule, tick: datetime) -> int:
        now_ms = round(self._clock() * 1000)
        tick_ms = round(tick.timestamp() * 1000)
        job_id = tick_job_id(schedule.name, tick)
        payload = schedule.task.validate(schedule.payload).model_dump(mode="json")
        # what arq's serialize_job writes, bound to the tick's job id and queue
        body: dict[str, Any] = {"t": None, "f": schedule.task.name, "a": (payload,), "k": {}, "et": now_ms}
        envelope = self._codec.dumps_job(body, job_id=job_id, queue=self._queue)
        k = JobKeys(job_id, self._queue)
        done = await self._enqueue(
            keys=[ledger_key(self._queue, schedule.name), k.job, k.result, k.queue, k.abort],
            args=[tick_ms, job_id, tick_ms, max(tick_ms, now_ms) - now_ms + self._expires_ms, envelope],
        )
        if done:
            logger.info("schedule %s: enqueued tick %s as job %s", schedule.name, tick.isoformat(), job_id)
        return int(done)
