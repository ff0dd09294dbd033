"""The checks behind the settings' validators: pure functions of one value, each raising ``ValueError``
with what was expected (pydantic turns it into the ``SettingsError`` that names the variable).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from worker.queue_names import queue_name_problem

#: The longest duration any ``*_s`` setting may take.
MAX_DURATION_S = 10 * 365 * 86400.0
#: Query parameters of a Redis URL that carry credentials (redis-py reads them): moved out of the URL.
URL_CREDENTIALS = frozenset({"password", "username"})


def split_commas(value: Any) -> Any:
    """``a,b`` (or a JSON list) as a list; anything else as it is."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):  # a JSON list is accepted too
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


def bounded_duration(field_name: str | None, value: Any) -> Any:
    """``value``, unless it is a ``*_s`` duration over :data:`MAX_DURATION_S`."""
    # Redis takes TTLs in 64-bit milliseconds and clocks end in year 9999: ten years is past any real need.
    duration = field_name is not None and field_name.endswith("_s") and isinstance(value, float)
    if duration and value > MAX_DURATION_S:
        raise ValueError(f"must be at most {MAX_DURATION_S:.0f} seconds (ten years), got {value:g}")
    return value


def checked_redis_url(value: str) -> str:
    """``value`` if it is a Redis URL jobq can connect to."""
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


def checked_queue_name(value: str) -> str:
    """``value`` if it may name a queue (see :mod:`worker.queue_names`)."""
    problem = queue_name_problem(value)
    if problem is not None:
        raise ValueError(f"the queue name {problem}")
    return value


def checked_sentinels(value: list[str]) -> list[str]:
    """``value`` if every entry is ``host:port``."""
    for item in value:
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"expected host:port entries, got {item!r}")
    return value


def without_url_credentials(data: Any) -> Any:
    """The raw settings with the credentials of ``redis_url`` moved to their secret fields.

    A password (and user name) in the userinfo (``redis://user:pw@host``) or in the query string
    (``?password=...&username=...``, which redis-py reads too) moves to ``redis_password`` (and
    ``redis_username``) unless those are set; either way it leaves the URL, so the URL can be logged.
    """
    if not isinstance(data, dict) or not isinstance(data.get("redis_url"), str):
        return data
    parts = urlsplit(data["redis_url"])
    query = parse_qsl(parts.query, keep_blank_values=True)
    secrets = {name: value for name, value in query if name in URL_CREDENTIALS}
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
    kept = urlencode([(name, value) for name, value in query if name not in URL_CREDENTIALS])
    data["redis_url"] = urlunsplit((parts.scheme, netloc, parts.path, kept, parts.fragment))
    return data


def cron_from_json(value: Any) -> Any:
    """``JOBQ_CRON``'s JSON text as an object (other values as they are)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f'not a JSON object ({exc}); write it as {{"schedule name": "0 3 * * *"}}') from None


def checked_sentry_dsn(value: SecretStr | None) -> SecretStr | None:
    """``value`` if it is a Sentry DSN (None when unset or empty)."""
    if value is None or not value.get_secret_value():
        return None
    from sentry_sdk.utils import BadDsn, Dsn  # only when one is set: the worker imports Sentry only then

    try:
        Dsn(value.get_secret_value())
    except BadDsn as exc:
        # BadDsn names the part that is wrong (scheme, key, project), never the whole DSN.
        raise ValueError(f"not a Sentry DSN ({exc}); copy it from the project's Client Keys page") from None
    return value
