"""Logging and Sentry set-up, done once at the edge before the worker is created."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
import sentry_sdk
from sentry_sdk.integrations.arq import ArqIntegration

from .context import JobContext
from .settings import JobqSettings

# arq logs each job start as '<delay> → <job ref>(<args>)<extra>'; the arguments may hold personal data.
_ARQ_START_FORMAT = "%6.2fs → %s(%s)%s"
_STANDARD_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactJobArguments(logging.Filter):
    """Replaces job arguments in arq's start lines with '…' so payloads never reach the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _ARQ_START_FORMAT and isinstance(record.args, tuple) and len(record.args) == 4:
            delay, ref, _, extra = record.args
            record.args = (delay, ref, "…", extra)
        return True


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


def configure_logging(settings: JobqSettings) -> None:
    """Send every log line to stderr in the configured format and level."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactJobArguments())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def report_job_failure(exc: BaseException, ctx: JobContext, payload: Any = None) -> None:
    """Report the final failure of a job to Sentry, tagged with task, job id and try.

    The payload is attached only when ``JOBQ_SENTRY_SEND_JOB_ARGS`` allowed it at :func:`init_sentry`.
    A no-op while Sentry is not initialised; tries that will be retried are not reported as errors.
    """
    client = sentry_sdk.get_client()
    if not client.is_active():
        return
    job: dict[str, Any] = {"task": ctx.task, "job_id": ctx.job_id, "try": ctx.try_number, "max_tries": ctx.max_tries}
    if payload is not None and (client.options.get("data_collection") or {}).get("queues"):
        job["payload"] = payload
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("jobq.task", ctx.task)
        scope.set_tag("jobq.job_id", ctx.job_id)
        scope.set_tag("jobq.try", ctx.try_number)
        scope.set_context("jobq job", job)
        sentry_sdk.capture_exception(exc)


def init_sentry(settings: JobqSettings) -> bool:
    """Start Sentry when a DSN is configured; must run before the arq worker is created.

    Job payloads are sent only when ``JOBQ_SENTRY_SEND_JOB_ARGS`` is on, and local variables
    (which may hold payloads) never are.
    """
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        # Payloads leave the worker only when asked for; frame variables (which hold them) never do.
        data_collection={
            "queues": settings.sentry_send_job_args,
            "user_info": False,
            "stack_frame_variables": False,
        },
        integrations=[ArqIntegration()],
    )
    return True
