"""Logging and Sentry set-up, done once at the edge before the worker is created.

sentry_sdk is imported only once Sentry is wanted (``JOBQ_SENTRY_DSN`` set, or a task module imports
it): a worker without a DSN does not pay for the SDK and its integrations.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from .settings import JobqSettings
from .states import Outcome

_STANDARD_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


job_logger = logging.getLogger("jobq.job")
_LEVELS = {
    Outcome.SUCCEEDED: logging.INFO,
    Outcome.RETRYING: logging.WARNING,
    Outcome.DEAD_LETTERED: logging.ERROR,
    Outcome.ABORTED: logging.WARNING,
    Outcome.INTERRUPTED: logging.INFO,
    Outcome.DEFERRED: logging.DEBUG,
}


def log_try(
    job_id: str,
    task: str,
    try_number: int,
    max_tries: int,
    outcome: Outcome,
    duration_s: float,
    detail: str = "",
    failure: Outcome | None = None,
) -> None:
    """The one log line of a finished try: job id, task, try, outcome and duration (never the payload)."""
    level = _LEVELS.get(outcome, logging.INFO)
    if not job_logger.isEnabledFor(level):
        return
    args = (job_id, task, try_number, max_tries, outcome.value, duration_s, f": {detail}" if detail else "")
    # makeRecord + handle: Logger.log would also walk the stack for the caller, which no format shows.
    record = job_logger.makeRecord(
        job_logger.name,
        level,
        __file__,
        0,
        "job %s %s try %d/%d %s in %.3fs%s",
        args,
        None,
        func="log_try",
        extra={
            "job_id": job_id,
            "task": task,
            "try_number": try_number,
            "max_tries": max_tries,
            "outcome": outcome.value,
            "failure": failure.value if failure else None,
            "duration_s": round(duration_s, 6),
        },
    )
    job_logger.handle(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, any ``extra`` fields, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``logging.Formatter`` with the time of day formatted once per second, not once per line."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """What ``logging.Formatter`` writes (``2026-01-31 12:00:00,123``), from a per-second cache."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(self.default_time_format, self.converter(record.created))
        return f"{self._stamp},{int(record.msecs):03d}"  # logging.Formatter.default_msec_format


def configure_logging(settings: JobqSettings) -> None:
    """Send every log line to stderr in the configured format and level."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def sentry_active() -> bool:
    """Whether a Sentry client runs in this process.

    Only a process that imported sentry_sdk can have one (:func:`init_sentry` does, as does any code
    of the tasks that initialises Sentry itself), so this never imports the SDK to find out.
    """
    sdk = sys.modules.get("sentry_sdk")
    return sdk is not None and bool(sdk.get_client().is_active())


def report_job_failure(
    exc: BaseException, *, task: str, job_id: str, try_number: int, max_tries: int, payload: Any = None
) -> None:
    """Report the final failure of a job to Sentry, tagged with task, job id and try.

    The payload is attached only when ``JOBQ_SENTRY_SEND_JOB_ARGS`` allowed it at :func:`init_sentry`.
    A no-op while Sentry is not initialised; tries that will be retried are not reported as errors.
    """
    if not sentry_active():
        return
    import sentry_sdk

    client = sentry_sdk.get_client()
    job: dict[str, Any] = {"task": task, "job_id": job_id, "try": try_number, "max_tries": max_tries}
    if payload is not None and (client.options.get("data_collection") or {}).get("queues"):
        job["payload"] = payload
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("jobq.task", task)
        scope.set_tag("jobq.job_id", job_id)
        scope.set_tag("jobq.try", try_number)
        scope.set_context("jobq job", job)
        sentry_sdk.capture_exception(exc)


def init_sentry(settings: JobqSettings) -> bool:
    """Start Sentry when a DSN is configured; must run before the arq worker is created.

    Job payloads are sent only when ``JOBQ_SENTRY_SEND_JOB_ARGS`` is on, and local variables
    (which may hold payloads) never are.
    """
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.arq import ArqIntegration
    from sentry_sdk.integrations.logging import ignore_logger

    # Job failures are reported by report_job_failure, with tags; their log lines would be duplicates.
    ignore_logger(job_logger.name)
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        # Payloads leave the worker only when asked for; frame variables (which hold them) never do.
        data_collection={
            "queues": settings.sentry_send_job_args,
            "user_info": False,
            "stack_frame_variables": False,
            # Redis breadcrumbs would otherwise carry command arguments: envelopes, payloads, results.
            "database_query_data": False,
        },
        # jobq runs jobs itself (worker.tracing makes a transaction per try); arq's integration would
        # patch code paths jobq does not use.
        disabled_integrations=[ArqIntegration()],
    )
    return True
