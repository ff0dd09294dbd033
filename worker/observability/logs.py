"""Logging set-up and the one log line of a finished try, done once at the edge before the worker is created.

The lines go through :class:`~worker.observability.stderr_lines.StderrLines` in one of the formats of
:mod:`worker.observability.formatters`. Sentry's set-up lives in :mod:`worker.observability.sentry`; its
names are re-exported here for the callers that import them from this module.
"""

from __future__ import annotations

import logging
import sys

from worker.observability.formatters import TEXT_FORMAT, JsonFormatter, TextFormatter
from worker.observability.sentry import init_sentry, report_job_failure, sentry_active
from worker.observability.stderr_lines import StderrLines
from worker.settings import JobqSettings
from worker.states import Outcome

__all__ = [
    "TEXT_FORMAT",
    "JsonFormatter",
    "StderrLines",
    "TextFormatter",
    "configure_logging",
    "init_sentry",
    "job_logger",
    "log_try",
    "report_job_failure",
    "sentry_active",
]

job_logger = logging.getLogger("jobq.job")
_LEVELS = {
    Outcome.SUCCEEDED: logging.INFO,
    Outcome.RETRYING: logging.WARNING,
    Outcome.DEAD_LETTERED: logging.ERROR,
    Outcome.ABORTED: logging.WARNING,
    Outcome.INTERRUPTED: logging.INFO,
    Outcome.WAITING: logging.DEBUG,
}
_TRY_MESSAGE = "job %s %s try %d/%d %s in %.3fs%s"
# The Logger methods a record goes through, as logging defines them. Code that wraps one to see every
# record (Sentry's logging integration wraps callHandlers) needs the real record: the direct line is off.
_RECORD_PATH = (logging.Logger.makeRecord, logging.Logger.handle, logging.Logger.callHandlers)


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
    handler = _direct_handler(level)
    if handler is not None and not handler.json_lines:  # a text line shows no extras: skip building them
        handler.emit_line(job_logger, level, _TRY_MESSAGE % args, {})
        return
    fields = {
        "job_id": job_id,
        "task": task,
        "try_number": try_number,
        "max_tries": max_tries,
        "outcome": outcome.value,
        "failure": failure.value if failure else None,
        "duration_s": round(duration_s, 6),
    }
    if handler is not None:
        handler.emit_line(job_logger, level, _TRY_MESSAGE % args, fields)
        return
    # makeRecord + handle: Logger.log would also walk the stack for the caller, which no format shows.
    record = job_logger.makeRecord(
        job_logger.name, level, __file__, 0, _TRY_MESSAGE, args, None, func="log_try", extra=fields
    )
    job_logger.handle(record)


def _direct_handler(level: int) -> StderrLines | None:
    """jobq's own stderr handler when it alone would get the try's record, unchanged; else None.

    Then the line can be formatted without a ``LogRecord`` and the logger hierarchy walk (about two
    thirds of a line's cost), with the same result. Anything that would see or change the record turns
    this off: a record factory, a logger class or filter, another handler, a wrapped Logger method.
    """
    if (
        job_logger.handlers
        or job_logger.filters
        or job_logger.disabled
        or not job_logger.propagate
        or type(job_logger) is not logging.Logger
        or logging.getLogRecordFactory() is not logging.LogRecord
        or (logging.Logger.makeRecord, logging.Logger.handle, logging.Logger.callHandlers) != _RECORD_PATH
    ):
        return None
    root = logging.root
    parent = job_logger.parent
    while parent is not None and parent is not root:
        if parent.handlers or not parent.propagate:
            return None
        parent = parent.parent
    handlers = root.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if type(handler) is not StderrLines or not handler.direct_ok(level):
        return None
    return handler


def configure_logging(settings: JobqSettings) -> None:
    """Send every log line to stderr in the configured format and level."""
    formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter(TEXT_FORMAT)
    handler = StderrLines(sys.stderr, formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
