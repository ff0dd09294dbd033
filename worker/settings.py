"""The one settings object of jobq, read from ``JOBQ_*`` environment variables.

Build it once at the edge with :func:`load_settings` and pass it down; nothing in jobq reads the
environment anywhere else. Secrets are :class:`~pydantic.SecretStr` and print as ``**********``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from worker.errors import SettingsError
from worker.policy import RetryPolicy
from worker.queue_names import queue_name_problem

ENV_PREFIX = "JOBQ_"
logger = logging.getLogger("jobq.settings")

#: The longest duration any ``*_s`` setting may take.
MAX_DURATION_S = 10 * 365 * 86400.0

CommaList = Annotated[list[str], NoDecode]
#: Query parameters of a Redis URL that carry credentials (redis-py reads them): moved out of the URL.
_URL_CREDENTIALS = frozenset({"password", "username"})


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):  # a JSON list is accepted too
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


class JobqSettings(BaseSettings):
    """Every knob of jobq. Each field is set by the environment variable ``JOBQ_<FIELD NAME>``."""

    # No infinities or NaN in any number: every duration ends up as a Redis TTL or a deadline.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid", allow_inf_nan=False)

    # --- Redis connection -------------------------------------------------------------------
    redis_url: str = Field(
        "redis://localhost:6379/0",
        description="Redis to use: `redis://host:port/db`, `rediss://` for TLS, or `unix:///path.sock`. "
        "A password in the URL is moved into JOBQ_REDIS_PASSWORD and never logged.",
    )
    redis_username: str | None = Field(None, description="ACL user name (overrides the URL's).")
    redis_password: SecretStr | None = Field(None, description="Password for AUTH or the ACL user (secret).")
    redis_tls_ca_file: Path | None = Field(None, description="CA bundle that signs the server's certificate.")
    redis_tls_cert_file: Path | None = Field(None, description="Client certificate for mutual TLS.")
    redis_tls_key_file: Path | None = Field(None, description="Private key of the client certificate.")
    redis_tls_verify: Literal["required", "optional", "none"] = Field(
        "required", description="Server certificate check: `required`, `optional` or `none`."
    )
    redis_tls_check_hostname: bool = Field(True, description="Check the server certificate's host name.")
    redis_sentinels: CommaList = Field(
        default_factory=list,
        description="Sentinel addresses `host:port,host:port`; when set, the master is found through them.",
    )
    redis_sentinel_master: str = Field("mymaster", description="Name of the master the sentinels watch.")
    redis_sentinel_password: SecretStr | None = Field(None, description="Password of the sentinels (secret).")
    redis_socket_timeout_s: float = Field(
        5.0, gt=0, description="Seconds a Redis command may take before the connection is dropped."
    )
    redis_connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for a Redis connection.")
    redis_safety_check: Literal["warn", "refuse", "off"] = Field(
        "warn",
        description="At worker start-up, check that Redis runs with `maxmemory-policy noeviction` and persistence "
        "on: `warn` logs what is unsafe, `refuse` exits 2 instead of starting, `off` skips the check.",
    )

    # --- Queue and worker -------------------------------------------------------------------
    queue_name: str = Field(
        "arq:queue", min_length=1, description="Queue (Redis sorted set) that producers and workers share."
    )
    max_jobs: int = Field(10, ge=1, description="Jobs one worker process runs at once.")
    poll_delay_s: float = Field(
        0.5,
        gt=0,
        description="Seconds between fallback polls of the queue by an idle worker. jobq producers wake idle "
        "workers at once; the poll picks up what sends no wake-up: jobs of stock arq producers, and jobs whose "
        "lease ran out.",
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
        0.5, gt=0, description="Seconds before a job that found no free concurrency slot is tried again (jittered)."
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
        default_factory=lambda: ["tasks"],
        description="Modules or packages (with all their submodules) that define the tasks.",
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

    @field_validator("redis_sentinels", "task_modules", "give_up_on", "middleware", mode="before")
    @classmethod
    def _lists_from_commas(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("*")
    @classmethod
    def _bound_durations(cls, value: Any, info: ValidationInfo) -> Any:
        # Redis takes TTLs in 64-bit milliseconds and clocks end in year 9999: ten years is past any real need.
        duration = info.field_name is not None and info.field_name.endswith("_s") and isinstance(value, float)
        if duration and value > MAX_DURATION_S:
            raise ValueError(f"must be at most {MAX_DURATION_S:.0f} seconds (ten years), got {value:g}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("expected a URL starting with redis://, rediss:// or unix://")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("expected a host, as in redis://host:6379/0")
        if parts.scheme != "unix":
            db = parts.path.lstrip("/")
            if db and not db.isdigit():
                raise ValueError(f"the database after the host must be a number, got {db!r}")
        return value

    @field_validator("queue_name")
    @classmethod
    def _check_queue_name(cls, value: str) -> str:
        problem = queue_name_problem(value)
        if problem is not None:
            raise ValueError(f"the queue name {problem}")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for item in value:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port entries, got {item!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _move_url_password(cls, data: Any) -> Any:
        """Keep secrets out of ``redis_url`` so the URL can be logged and shown safely.

        A password (and user name) in the userinfo (``redis://user:pw@host``) or in the query string
        (``?password=...&username=...``, which redis-py reads too) moves to JOBQ_REDIS_PASSWORD (and
        JOBQ_REDIS_USERNAME) unless those are set; either way it leaves the URL.
        """
        if not isinstance(data, dict) or not isinstance(data.get("redis_url"), str):
            return data
        parts = urlsplit(data["redis_url"])
        query = parse_qsl(parts.query, keep_blank_values=True)
        secrets = {name: value for name, value in query if name in _URL_CREDENTIALS}
        if parts.password is None and parts.username is None and not secrets:
            return data
        data = dict(data)
        password = parts.password if parts.password is not None else secrets.get("password")
        username = parts.username or secrets.get("username")
        if password is not None and not data.get("redis_password"):
            data["redis_password"] = password
        if username and not data.get("redis_username"):
            data["redis_username"] = username
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        kept = urlencode([(name, value) for name, value in query if name not in _URL_CREDENTIALS])
        data["redis_url"] = urlunsplit((parts.scheme, netloc, parts.path, kept, parts.fragment))
        return data

    @field_validator("cron", mode="before")
    @classmethod
    def _cron_from_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f'not a JSON object ({exc}); write it as {{"schedule name": "0 3 * * *"}}') from None

    @field_validator("sentry_dsn")
    @classmethod
    def _check_sentry_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        from sentry_sdk.utils import BadDsn, Dsn  # only when one is set: the worker imports Sentry only then

        try:
            Dsn(value.get_secret_value())
        except BadDsn as exc:
            # BadDsn names the part that is wrong (scheme, key, project), never the whole DSN.
            raise ValueError(f"not a Sentry DSN ({exc}); copy it from the project's Client Keys page") from None
        return value

    @property
    def retry_policy(self) -> RetryPolicy:
        """The default retry policy of tasks that do not declare their own."""
        return RetryPolicy(
            max_tries=self.max_tries,
            backoff_base_s=self.retry_backoff_base_s,
            backoff_factor=self.retry_backoff_factor,
            backoff_max_s=self.retry_backoff_max_s,
        )

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``JOBQ_REDIS_SENTINELS`` as ``(host, port)`` pairs."""
        pairs = []
        for item in self.redis_sentinels:
            host, _, port = item.rpartition(":")
            pairs.append((host, int(port)))
        return pairs


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


def settings_table_markdown() -> str:
    """The configuration table of the README, generated from the settings class."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, info in JobqSettings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, list):
            shown = ",".join(default) if default else "(empty)"
        elif default is None:
            shown = "(unset)"
        else:
            shown = str(default)
        rows.append(f"| `{env_name(name)}` | `{shown}` | {info.description} |")
    return "\n".join(rows)
