"""The one settings object of jobq, read from ``JOBQ_*`` environment variables.

Build it once at the edge with :func:`load_settings` and pass it down; nothing in jobq reads the
environment anywhere else. Secrets are :class:`~pydantic.SecretStr` and print as ``**********``.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from worker.errors import SettingsError
from worker.policy import RetryPolicy
from worker.queue_plan import QueuePlan
from worker.redis_settings import CommaList, RedisSettings
from worker.setting_checks import (
    bounded_duration,
    checked_queue_name,
    checked_sentry_dsn,
    cron_from_json,
    split_commas,
)

ENV_PREFIX = "JOBQ_"
logger = logging.getLogger("jobq.settings")


class JobqSettings(RedisSettings):
    """Every knob of jobq. Each field is set by the environment variable ``JOBQ_<FIELD NAME>``."""

    # No infinities or NaN in any number: every duration ends up as a Redis TTL or a deadline.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid", allow_inf_nan=False)

    # The Redis connection's fields come first, from RedisSettings (worker/redis_settings.py).

    # --- Queue and worker -------------------------------------------------------------------
    queue_name: str = Field(
        "arq:queue", min_length=1, description="Queue (Redis sorted set) that producers and workers share."
    )
    queues: str = Field(
        "",
        description="Queues one worker serves, when more than JOBQ_QUEUE_NAME: `high,default,low` serves them in "
        "strict order (a queue only while the ones before it have no more due jobs than free slots), "
        "`high=5,default=3,low=1` shares the worker's JOBQ_MAX_JOBS slots among the queues that have work by "
        "weight (at least one each: none starves). Empty: JOBQ_QUEUE_NAME only. `jobq worker --queues high,low` "
        "sets it.",
    )
    max_jobs: int = Field(10, ge=1, description="Jobs one worker process runs at once.")
    poll_delay_s: float = Field(
        5.0,
        gt=0,
        description="Seconds between fallback polls of the queue by an idle worker. jobq producers, retries and "
        "deferred jobs wake one idle worker at once (the queue's marker); the poll picks up what arms no marker: "
        "jobs of stock arq producers, and jobs whose lease ran out. Set 0.5 (arq's own poll) when stock arq "
        "producers must be picked up quickly; each poll costs Redis about three commands per idle worker.",
    )
    job_timeout_s: float = Field(300.0, gt=0, description="Default time limit of one try, in seconds.")
    max_tries: int = Field(5, ge=1, description="Default number of tries before a job fails for good.")
    retry_backoff_base_s: float = Field(1.0, ge=0, description="Seconds: delay ceiling after the first failed try.")
    retry_backoff_factor: float = Field(2.0, ge=1, description="Factor the delay ceiling grows by per failed try.")
    retry_backoff_max_s: float = Field(300.0, ge=0, description="Seconds: the largest delay between two tries.")
    give_up_on: CommaList = Field(
        default_factory=list,
        description="Exception classes (dotted names, e.g. `KeyError,myapp.errors.Gone`) never retried by any task.",
    )
    max_interruptions: int = Field(
        3,
        ge=0,
        description="Tries cut short by worker crashes or shutdowns a job may suffer (uncharged) before it is "
        "quarantined in the dead letters.",
    )
    slot_retry_s: float = Field(
        5.0,
        gt=0,
        description="A job that finds every slot of its concurrency limit taken waits, parked, until a slot frees "
        "(not a try, no polling); each full limit is also re-checked this often (seconds), which bounds the wait "
        "caused by a slot whose holder crashed. Each re-check of a limit still full costs about 20 Redis commands.",
    )
    rate_hold_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="A job over its RateLimit whose turn comes within this many seconds has that turn reserved "
        "(by the claim, or by the worker's own check) and waits for it in the worker, holding a worker slot, "
        "while fewer than half of JOBQ_MAX_JOBS do; a later turn parks the job until its turn comes within this "
        "time. 0: every job over the rate parks until its turn.",
    )
    limit_lease_s: float = Field(
        30.0,
        gt=0,
        description="Lease of a distributed concurrency slot; renewed every third while the job runs, so the "
        "slots of a crashed worker free themselves within this time.",
    )
    cancel_grace_s: float = Field(
        1.0,
        gt=0,
        description="Seconds a cancelled task (timeout, abort, shutdown) gets to stop before it is abandoned.",
    )
    abort_check_s: float = Field(
        0.5, gt=0, description="Seconds between a worker's checks for abort requests of the jobs it runs."
    )
    dead_letter_max_entries: int = Field(
        10_000, ge=1, description="Dead letters kept per queue; the oldest are dropped beyond this."
    )
    dead_letter_retention_s: float = Field(
        7 * 86400.0, gt=0, description="Seconds a dead letter is kept before it is dropped."
    )
    lease_ttl_s: float = Field(
        30.0,
        gt=0,
        description="Seconds a running job's lease lasts; renewed every third by its worker, so the jobs of a "
        "killed worker run again within this time.",
    )
    shutdown_grace_s: float = Field(
        25.0,
        ge=0,
        description="Seconds a worker stopping on SIGTERM/SIGINT lets running jobs finish before it returns them "
        "to the queue; keep it below the orchestrator's kill timeout.",
    )
    health_interval_s: float = Field(5.0, gt=0, description="Seconds between a worker's heartbeats in Redis.")
    http_port: int = Field(
        0, ge=0, le=65535, description="Port of the worker's HTTP server (/livez, /readyz, /metrics); 0 serves none."
    )
    cron: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="JSON object overriding schedules by name: a cron expression, `every 30s`, or `off`.",
    )
    cron_misfire_grace_s: float = Field(
        30.0,
        ge=0,
        description="Seconds a tick may be late and still run as usual; later ticks follow the schedule's "
        "misfire policy.",
    )
    result_ttl_s: float = Field(3600.0, ge=0, description="Seconds results are kept; 0 keeps none.")
    job_expires_s: float = Field(
        86400.0, gt=0, description="Seconds after its scheduled time that a job not yet started expires."
    )
    task_modules: CommaList = Field(
        default_factory=list,
        description="Modules or packages (with all their submodules) that define the tasks, e.g. `myapp.jobs`; "
        "the `jobq` commands also take them as arguments. jobq's built-in tasks load only when listed "
        "(`tasks.webhooks`, `tasks.maintenance`..., or `tasks` for all of them).",
    )
    import_cwd: bool = Field(
        True,
        description="The `jobq` commands append the directory they run in to the import path, so task modules "
        "of the project there load without PYTHONPATH (`--no-cwd` turns it off for one command).",
    )
    middleware: CommaList = Field(
        default_factory=list,
        description="Job middlewares run around every try after jobq's own: dotted names of `worker.Middleware` "
        "classes (made with no arguments) or instances, e.g. `myapp.jobs.Timing`.",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key; when set, envelopes are signed and unsigned ones refused (secret).",
    )
    signing_accept_unbound: bool = Field(
        True,
        description="Also run signed jobs whose signature is not bound to their job id and queue (written by an "
        "older jobq or by arq's `enqueue_job`), logging a warning once. Deprecated: set false once those jobs "
        "have run; the next release refuses them.",
    )
    max_envelope_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Largest job envelope, in bytes: larger jobs are refused at enqueue, and larger entries found "
        "in Redis are dead-lettered without being decoded. Pass big data by reference (a path or URL).",
    )

    # --- HTTP API and dashboard --------------------------------------------------------------
    api_token: SecretStr | None = Field(
        None, description="Bearer token the HTTP API requires; `jobq api` refuses to start without one (secret)."
    )
    api_host: str = Field("127.0.0.1", description="Address `jobq api` listens on (`0.0.0.0` in a container).")
    api_port: int = Field(8080, ge=1, le=65535, description="Port `jobq api` listens on.")
    api_read_timeout_s: float = Field(
        15.0,
        gt=0,
        description="Seconds a client of `jobq api` may take to send a request's headers, and again its body "
        "(then 408); also how long an idle keep-alive connection stays open. Keep a proxy's idle timeout below it.",
    )
    api_max_connections: int = Field(
        256, ge=1, description="Connections `jobq api` serves at once; more are answered 503 and closed."
    )

    # --- Built-in tasks ------------------------------------------------------------------------
    webhook_secret: SecretStr | None = Field(
        None, description="Key that signs outgoing webhooks (HMAC-SHA256); webhook jobs fail without it (secret)."
    )
    files_root: Path | None = Field(
        None, description="Directory the file tasks work in; paths outside it are refused. Unset: file tasks refuse."
    )

    # --- Logs and error reporting -----------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field("text", description="`text` for people, `json` for collectors.")
    sentry_dsn: SecretStr | None = Field(None, description="Sentry DSN; errors are reported when set (secret).")
    sentry_environment: str | None = Field(None, description="Environment name shown in Sentry.")
    sentry_traces_sample_rate: float = Field(0.0, ge=0, le=1, description="Share of jobs traced in Sentry.")
    sentry_send_job_args: bool = Field(False, description="Send job payloads to Sentry (off: they may hold PII).")

    @field_validator("task_modules", "give_up_on", "middleware", mode="before")
    @classmethod
    def _lists_from_commas(cls, value: Any) -> Any:
        return split_commas(value)

    @field_validator("*")
    @classmethod
    def _bound_durations(cls, value: Any, info: ValidationInfo) -> Any:
        return bounded_duration(info.field_name, value)

    @field_validator("queue_name")
    @classmethod
    def _check_queue_name(cls, value: str) -> str:
        return checked_queue_name(value)

    @field_validator("queues")
    @classmethod
    def _check_queues(cls, value: str) -> str:
        return str(QueuePlan.parse(value)) if value.strip() else ""

    @model_validator(mode="after")
    def _enough_slots_for_the_weights(self) -> JobqSettings:
        plan = self.queue_plan
        if not plan.strict and len(plan.queues) > self.max_jobs:
            raise ValueError(
                f"JOBQ_QUEUES gives weights to {len(plan.queues)} queues but JOBQ_MAX_JOBS={self.max_jobs}: each "
                "weighted queue needs a slot of its own; raise JOBQ_MAX_JOBS or list the queues in strict order"
            )
        return self

    @field_validator("cron", mode="before")
    @classmethod
    def _cron_from_json(cls, value: Any) -> Any:
        return cron_from_json(value)

    @field_validator("sentry_dsn")
    @classmethod
    def _check_sentry_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        return checked_sentry_dsn(value)

    @property
    def queue_plan(self) -> QueuePlan:
        """The queues a worker serves (``JOBQ_QUEUES``, else ``JOBQ_QUEUE_NAME`` alone)."""
        return QueuePlan.parse(self.queues) if self.queues else QueuePlan.single(self.queue_name)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The default retry policy of tasks that do not declare their own."""
        return RetryPolicy(
            max_tries=self.max_tries,
            backoff_base_s=self.retry_backoff_base_s,
            backoff_factor=self.retry_backoff_factor,
            backoff_max_s=self.retry_backoff_max_s,
        )


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return ENV_PREFIX + field.upper()


def _describe(error: dict[str, Any]) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    info = JobqSettings.model_fields.get(field)
    if field and info is not None:
        shown = "<hidden>" if info.annotation is not None and "SecretStr" in str(info.annotation) else None
        value = shown or repr(error.get("input"))
        msg = str(error["msg"]).removeprefix("Value error, ")
        return f"{env_name(field)}={value}: {msg} (expected: {info.description})"
    return str(error["msg"])


def load_settings(**overrides: Any) -> JobqSettings:
    """Read the settings from the environment (plus ``overrides``), or raise :class:`SettingsError`.

    The error lists every invalid variable with the value seen and the form expected.
    """
    _warn_unknown_env()
    try:
        return JobqSettings(**overrides)
    except ValidationError as exc:
        lines = [_describe(dict(error)) for error in exc.errors()]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
    except PydanticSettingsError as exc:  # a value pydantic-settings could not even decode (e.g. bad JSON)
        named = re.search(r'field "(\w+)"', str(exc))
        where = env_name(named.group(1)) if named else "a JOBQ_ variable"
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise SettingsError(f"invalid settings:\n  {where}: could not be read{cause}") from None


def _warn_unknown_env() -> None:
    # Only a warning: Kubernetes service links inject JOBQ_PORT and friends for a Service named jobq.
    known = {env_name(name) for name in JobqSettings.model_fields}
    for name in sorted(os.environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            logger.warning("ignoring unknown setting %s%s", name, hint)
