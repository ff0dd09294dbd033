"""Sentry around each job: a transaction that continues the producer's trace, and cron check-ins.

The producer's client puts the current trace headers (``sentry-trace``, ``baggage``) into the job's
options; the worker continues that trace, so a job's transaction appears under the request that
enqueued it. Jobs of schedules (ids ``cron:<name>:<tick>``) send check-ins to Sentry Crons. Without a
configured DSN every function here does nothing, and sentry_sdk is not even imported.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from worker.observability.logs import sentry_active
from worker.states import Outcome
from worker.taskdef.cron import ActiveSchedule, Cron, Every

_SPAN_STATUS = {
    Outcome.SUCCEEDED: "ok",
    Outcome.ABORTED: "cancelled",
    Outcome.INTERRUPTED: "aborted",
    Outcome.WAITING: "resource_exhausted",
    Outcome.LEASE_LOST: "aborted",
}


def isolation_scope() -> contextlib.AbstractContextManager[object]:
    """A fresh Sentry isolation scope, which keeps one job's tags off the others (when Sentry is active)."""
    if not sentry_active():
        return contextlib.nullcontext()
    import sentry_sdk

    return sentry_sdk.isolation_scope()


def trace_headers() -> dict[str, str]:
    """The current trace, for a job enqueued now ({} when Sentry is off or no trace is running)."""
    if not sentry_active():
        return {}
    import sentry_sdk

    headers = {"sentry-trace": sentry_sdk.get_traceparent(), "baggage": sentry_sdk.get_baggage()}
    return {k: v for k, v in headers.items() if v}


def monitor_configs(schedules: list[ActiveSchedule]) -> dict[str, dict[str, Any]]:
    """Sentry Crons monitor configs of the schedules Sentry can express (minute resolution)."""
    configs: dict[str, dict[str, Any]] = {}
    for active in schedules:
        timing = active.timing
        if isinstance(timing, Cron) and len(timing.expression.split()) == 5:
            configs[active.schedule.name] = {
                "schedule": {"type": "crontab", "value": timing.expression},
                "timezone": timing.timezone,
            }
        elif isinstance(timing, Every) and timing.seconds >= 60 and timing.seconds % 60 == 0:
            configs[active.schedule.name] = {
                "schedule": {"type": "interval", "value": int(timing.seconds // 60), "unit": "minute"}
            }
    return configs


class JobTrace:
    """The Sentry side of one try; ``end(outcome)`` sets the transaction status and the check-in."""

    def __init__(self, monitor: str | None, monitor_config: dict[str, Any] | None) -> None:
        self._monitor = monitor
        self._config = monitor_config
        self._check_in: str | None = None
        self._started = time.monotonic()
        self.transaction: Any = None

    def start_check_in(self) -> None:
        if self._monitor is not None:
            from sentry_sdk.crons import capture_checkin

            self._check_in = capture_checkin(
                monitor_slug=self._monitor,
                status="in_progress",
                monitor_config=self._config,  # type: ignore[arg-type]
            )

    def end(self, outcome: Outcome) -> None:
        """Record how the try ended."""
        if self.transaction is not None:
            self.transaction.set_status(_SPAN_STATUS.get(outcome, "internal_error"))
        if self._check_in is not None and self._monitor is not None:
            from sentry_sdk.crons import capture_checkin

            status = "ok" if outcome is Outcome.SUCCEEDED else "error"
            capture_checkin(
                monitor_slug=self._monitor,
                check_in_id=self._check_in,
                status=status,
                duration=time.monotonic() - self._started,
            )


@contextlib.contextmanager
def job_trace(
    *, task: str, job_id: str, try_number: int, queue: str, headers: dict[str, str], monitors: dict[str, Any]
) -> Iterator[JobTrace]:
    """Trace one try of a job as a Sentry transaction continuing the producer's trace."""
    monitor = job_id.split(":")[1] if job_id.startswith("cron:") and job_id.count(":") >= 2 else None
    trace = JobTrace(monitor, monitors.get(monitor) if monitor else None)
    if not sentry_active():
        yield trace
        return
    import sentry_sdk

    scope = sentry_sdk.get_isolation_scope()
    scope.set_tag("jobq.task", task)
    scope.set_tag("jobq.job_id", job_id)
    scope.set_tag("jobq.try", try_number)
    transaction = sentry_sdk.continue_trace(
        headers, op="queue.task", name=task, source="task", origin="auto.queue.jobq"
    )
    transaction.set_data("messaging.message.id", job_id)
    transaction.set_data("messaging.destination.name", queue)
    transaction.set_data("messaging.message.retry.count", try_number - 1)
    with sentry_sdk.start_transaction(transaction) as started:
        trace.transaction = started
        trace.start_check_in()
        yield trace
