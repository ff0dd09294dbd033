"""jobq's own job middlewares: Prometheus metrics, the try log line and Sentry.

:func:`worker.engine.assembly.build_worker` puts them first, in the order Sentry, metrics, try log, before
any of the user's: Sentry's scope and transaction wrap every other hook, and the log line is written after
the user's ``after_try`` hooks ran (afters run in reverse order).
"""

from __future__ import annotations

import contextlib
from typing import Any

from worker.observability.logs import log_try, report_job_failure, sentry_active
from worker.observability.metrics import Metrics
from worker.observability.tracing import JobTrace, isolation_scope, job_trace
from worker.protocol.options import JobOptions
from worker.states import Outcome
from worker.taskdef.middleware import Middleware, TryInfo


class MetricsMiddleware(Middleware):
    """Counts tries started (with their pickup latency) and ended (by outcome, with their duration)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def before_try(self, info: TryInfo) -> None:
        due_ms = info.due_ms
        self.metrics.try_started(info.queue, info.task, None if due_ms is None else (info.started_ms - due_ms) / 1000)

    def after_try(self, info: TryInfo, outcome: Outcome, error: BaseException | None, duration_s: float) -> None:
        if outcome is not Outcome.LEASE_LOST:  # the try's new owner counts it
            self.metrics.try_ended(info.queue, info.task, outcome, info.failure, duration_s)
            if info.workflow_event is not None:
                self.metrics.workflow_ended(info.workflow_event)


class TryLogMiddleware(Middleware):
    """The one log line of each try's end (``jobq.job``): job id, task, try, outcome, duration, never the payload."""

    def after_try(self, info: TryInfo, outcome: Outcome, error: BaseException | None, duration_s: float) -> None:
        log_try(info.job_id, info.task, info.try_number, info.max_tries, outcome, duration_s, info.detail, info.failure)


class SentryMiddleware(Middleware):
    """Sentry around each try: an isolation scope, a transaction that continues the producer's trace, cron
    check-ins (``monitors``: see :func:`worker.observability.tracing.monitor_configs`), and a report of each
    job's final failure. Does nothing while no Sentry client is active."""

    def __init__(self, monitors: dict[str, Any] | None = None) -> None:
        self._monitors = monitors or {}
        self._open: dict[str, tuple[contextlib.ExitStack, JobTrace]] = {}  # by job id: the tries being traced

    def before_try(self, info: TryInfo) -> None:
        if not sentry_active():
            return
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(isolation_scope())  # keeps this job's tags off the others
            headers = JobOptions.pop_from(dict(info.kwargs)).trace
            traced = job_trace(
                task=info.task, job_id=info.job_id, try_number=info.try_number, queue=info.queue,
                headers=headers, monitors=self._monitors,
            )  # fmt: skip
            trace = stack.enter_context(traced)
        except BaseException:
            stack.close()
            raise
        self._open[info.job_id] = (stack, trace)

    def after_try(self, info: TryInfo, outcome: Outcome, error: BaseException | None, duration_s: float) -> None:
        opened = self._open.pop(info.job_id, None) if self._open else None
        try:
            if outcome is Outcome.DEAD_LETTERED and error is not None:
                report_job_failure(
                    error, task=info.task, job_id=info.job_id, try_number=info.try_number, max_tries=info.max_tries,
                    payload=info.args or info.kwargs or None,
                )  # fmt: skip
        finally:
            if opened is not None:
                stack, trace = opened
                try:
                    trace.end(outcome)
                finally:
                    stack.close()
