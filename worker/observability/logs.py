"""Logging and Sentry set-up, done once at the edge before the worker is created.

sentry_sdk is imported only once Sentry is wanted (``JOBQ_SENTRY_DSN`` set, or a task module imports
it): a worker without a DSN does not pay for the SDK and its integrations.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from worker.settings import JobqSettings
from worker.states import Outcome

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


_TRY_MESSAGE = "job %s %s try %d/%d %s in %.3fs%s"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# What the direct path of log_try skips: a record factory, filters, or patched Logger methods (Sentry's
# logging integration patches callHandlers) each need the real record, so any of them turns it off.
_STDLIB_LOGGER = (logging.Logger.handle, logging.Logger.callHandlers, logging.Logger.makeRecord)


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
        handler.emit_line(level, _TRY_MESSAGE % args, {})
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
        handler.emit_line(level, _TRY_MESSAGE % args, fields)
        return
    # makeRecord + handle: Logger.log would also walk the stack for the caller, which no format shows.
    record = job_logger.makeRecord(
        job_logger.name, level, __file__, 0, _TRY_MESSAGE, args, None, func="log_try", extra=fields
    )
    job_logger.handle(record)


def _direct_handler(level: int) -> StderrLines | None:
    """jobq's own stderr handler when it alone would get the try's record, unchanged; else None.

    Then the line can be formatted without a ``LogRecord`` and the logger hierarchy walk (about two
    thirds of a line's cost), with the same result.
    """
    if (
        job_logger.handlers
        or job_logger.filters
        or job_logger.disabled
        or not job_logger.propagate
        or type(job_logger) is not logging.Logger
        or logging.getLogRecordFactory() is not logging.LogRecord
        or (logging.Logger.handle, logging.Logger.callHandlers, logging.Logger.makeRecord) != _STDLIB_LOGGER
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


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, any ``extra`` fields, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(record.created, record.levelname, record.name, record.getMessage())
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()

    @staticmethod
    def entry(created: float, levelname: str, name: str, message: str) -> dict[str, Any]:
        """The fields every line starts with."""
        return {
            "ts": datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": levelname,
            "logger": name,
            "message": message,
        }


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
        return self.time_of(record.created, record.msecs)

    def time_of(self, created: float, msecs: float) -> str:
        """``created`` (with ``msecs``, as a ``LogRecord`` has them) as ``formatTime`` writes it."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(self.default_time_format, self.converter(created))
        return f"{self._stamp},{int(msecs):03d}"  # logging.Formatter.default_msec_format


class StderrLines(logging.StreamHandler[TextIO]):
    """jobq's stderr handler: the lines of one event-loop iteration leave in one write and flush.

    Outside a running event loop (or on a second loop at the same time) a line is written at once,
    after any buffered ones. Buffered lines are written at the start of the next loop iteration, by
    ``flush()`` (which ``logging.shutdown`` calls at exit) and before any direct write; a killed
    process loses at most the lines of its last iteration.
    """

    def __init__(self, stream: TextIO, formatter: TextFormatter | JsonFormatter) -> None:
        super().__init__(stream)
        self.own_formatter = formatter
        self.json_lines = isinstance(formatter, JsonFormatter)
        self.setFormatter(formatter)
        self._lines: list[str] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def direct_ok(self, level: int) -> bool:
        """Whether a line at ``level`` may skip the record: nothing filters it and the format is ours."""
        return level >= self.level and not self.filters and self.formatter is self.own_formatter

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer (or write) the formatted record; errors go to ``handleError`` as in ``StreamHandler``."""
        try:
            self._add(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def emit_line(self, level: int, message: str, fields: dict[str, Any]) -> None:
        """What ``emit`` would write for a ``jobq.job`` record of ``message`` with ``fields`` as extras.

        Only for the formatter it was made with (see :func:`_direct_handler`); text lines show no extras.
        """
        created = time.time()
        levelname = logging.getLevelName(level)
        formatter = self.own_formatter
        if isinstance(formatter, JsonFormatter):
            entry = formatter.entry(created, levelname, job_logger.name, message)
            entry.update(fields)
            line = orjson.dumps(entry, default=str).decode()
        else:  # with TEXT_FORMAT, which configure_logging gave it
            msecs = int((created - int(created)) * 1000) + 0.0
            line = f"{formatter.time_of(created, msecs)} {levelname:<7} {job_logger.name}: {message}"
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            try:
                self._add(line)
            except RecursionError:
                raise
            except Exception:
                self.handleError(job_logger.makeRecord(job_logger.name, level, __file__, 0, message, (), None))

    def _add(self, line: str) -> None:
        """Buffer ``line`` until the end of this loop iteration, or write it now; the lock is held."""
        loop = asyncio._get_running_loop()
        self._lines.append(line)
        if loop is None or (self._flush_loop is not None and self._flush_loop is not loop):
            self._write_out()
        elif self._flush_loop is None:
            self._flush_loop = loop
            loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        try:
            self.flush()
        except Exception:  # an exception here would be logged by asyncio, through this handler
            self.handleError(job_logger.makeRecord(job_logger.name, logging.ERROR, __file__, 0, "flush", (), None))

    def flush(self) -> None:
        """Write the buffered lines, in order, then flush the stream."""
        with self.lock:  # type: ignore[union-attr]
            self._write_out()

    def _write_out(self) -> None:
        self._flush_loop = None
        lines, self._lines = self._lines, []  # taken before writing: a failed write is never repeated
        if lines:
            self.stream.write(self.terminator.join(lines) + self.terminator)
        if self.stream and hasattr(self.stream, "flush"):
            self.stream.flush()


def configure_logging(settings: JobqSettings) -> None:
    """Send every log line to stderr in the configured format and level."""
    formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter(TEXT_FORMAT)
    handler = StderrLines(sys.stderr, formatter)
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
        # jobq runs jobs itself (worker.observability.tracing makes a transaction per try); arq's integration would
        # patch code paths jobq does not use.
        disabled_integrations=[ArqIntegration()],
    )
    return True
