"""What jobq's Redis ACL user must be allowed, the check of it, and errors that say what is missing.

Producers and workers share one ACL user (deploy/README.md). It needs the keys ``arq:*`` and
``jobq:*`` and the queue's own key, Lua scripting (every enqueue, claim and finish is a script) and
write commands; ``BZPOPMIN`` on the queue's marker ``jobq:marker:<queue>`` is optional (without it idle
workers poll: :mod:`worker.engine.marker`).
The script ``permission_probe`` (``worker/protocol/lua/permission_probe.lua``) tries exactly that on
keys no job can have, in one round trip: workers run it at start-up (and exit 2 naming what is missing
instead of crash-looping), producers once per client and queue (and refuse to enqueue jobs no worker
with that user could ever claim). A refusal met later is translated by :func:`permission_error` into
the same kind of message; it is never retried as an outage.

Redis refuses in two shapes: a ``NOPERM`` reply (:class:`redis.exceptions.NoPermissionError`) for
the command itself or a key named in ``KEYS``, and a plain error raised inside a script ("The user
executing the script can't ...") for a command the script calls.
"""

from __future__ import annotations

import re
from typing import Any

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError, ResponseError

from worker.errors import RedisPermissionError
from worker.protocol.keys import ABORT_PREFIX, DEDUP_PREFIX, META_PREFIX, RATE_PREFIX
from worker.protocol.scripts import Scripts
from worker.settings import JobqSettings

__all__ = [
    "PROBE_ID",
    "PermissionCheck",
    "acl_line",
    "check_permissions",
    "is_refusal",
    "permission_error",
    "probe_keys",
    "redis_user",
]

#: The id under which the probe touches keys: no producer accepts a job id with spaces, so no job has it.
PROBE_ID = " jobq permission probe "
#: One key of each family a worker (or, for jobq:dedup:, a producer) writes besides the queue (the probe's keys are
#: ``prefix + PROBE_ID``).
KEY_FAMILIES = (
    job_key_prefix, in_progress_key_prefix, retry_key_prefix, result_key_prefix,
    META_PREFIX, ABORT_PREFIX, "jobq:dlq:", "jobq:worker:", "jobq:supervisor:",
    "jobq:paused:", "jobq:gates:", "jobq:waiting:", DEDUP_PREFIX, "jobq:fair:", RATE_PREFIX,
)  # fmt: skip
SCRIPT_COMMANDS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "script", "script|load", "script|exists"})

_COMMAND = re.compile(r"permissions to run the '([^']+)' command")
_SCRIPT_REFUSAL = "user executing the script can't"


def redis_user(settings: JobqSettings) -> str:
    """The ACL user jobq connects as (``JOBQ_REDIS_USERNAME`` or the URL's, else Redis's ``default``)."""
    return settings.redis_username or "default"


def probe_keys(queue: str) -> list[str]:
    """The probe's KEYS for ``queue``: the queue itself, then one key of each family under :data:`PROBE_ID`."""
    return [queue, *(prefix + PROBE_ID for prefix in KEY_FAMILIES)]


def acl_line(queue: str, user: str = "jobq") -> str:
    """The ``ACL SETUSER`` line that gives ``user`` what jobq needs on ``queue`` (deploy/README.md shows it)."""
    patterns = "~arq:* ~jobq:*" + ("" if queue.startswith("arq:") else f" ~{_pattern(queue)}")
    return f"ACL SETUSER {user} on >PASSWORD {patterns} +@all -@dangerous +info"


def is_refusal(message: str) -> bool:
    """True when Redis's error ``message`` refuses a permission (a command, key or channel)."""
    lowered = message.lower()
    return "noperm" in lowered or "no permissions" in lowered or _SCRIPT_REFUSAL in lowered


def _is_permission(exc: BaseException) -> bool:
    return isinstance(exc, NoPermissionError) or (isinstance(exc, ResponseError) and is_refusal(str(exc)))


def _fix(what: str, user: str) -> str:
    """What is refused, in words, and the rule that grants it."""
    if what.startswith("command "):
        command = what.removeprefix("command ")
        if command in SCRIPT_COMMANDS:
            return (
                f"Lua scripting is refused ({command!r}): jobq enqueues, claims and finishes jobs with scripts; "
                f"grant it with `ACL SETUSER {user} +@scripting`"
            )
        return f"the {command!r} command is refused; grant it with `ACL SETUSER {user} +{command}`"
    if what.startswith("keys "):
        pattern = what.removeprefix("keys ")
        return f"the keys {pattern} are refused; grant them with `ACL SETUSER {user} ~{pattern}`"
    if what.startswith("write "):
        return (
            f"write commands are refused ({what.removeprefix('write ')}); grant them with `ACL SETUSER {user} +@write`"
        )
    return what


def _message(user: str, queue: str, refused: list[str], detail: str) -> str:
    fixes = "; ".join(_fix(what, user) for what in refused)
    return (
        f"Redis refuses jobq's user {user!r} what workers need to claim and run jobs of queue {queue!r}: {fixes} "
        f"(Redis said: {detail}). The whole rule for jobq: `{acl_line(queue, user)}` (deploy/README.md, Redis)"
    )


def _refused_of(exc: BaseException) -> list[str]:
    """What a refusal error names: the command, else a key or a command inside a script (unknown which)."""
    text = str(exc)
    found = _COMMAND.search(text)
    if found:
        return [f"command {found.group(1)}"]
    if "key" in text:
        return ["access to a key jobq uses (arq:*, jobq:* or the queue's key)"]
    return ["a command jobq's scripts call (they need +@all -@dangerous, or at least +@write)"]


def permission_error(exc: BaseException, *, user: str, queue: str) -> RedisPermissionError | None:
    """``exc`` as a :class:`RedisPermissionError` naming what was refused, or None when it is no refusal."""
    if isinstance(exc, AuthenticationError):
        return RedisPermissionError(
            f"Redis refused the credentials of user {user!r} ({exc}): check JOBQ_REDIS_USERNAME and "
            "JOBQ_REDIS_PASSWORD (or the user:password@ of JOBQ_REDIS_URL), and that the user is `on`",
            user=user,
            refused=["credentials"],
        )
    if not _is_permission(exc):
        return None
    refused = _refused_of(exc)
    return RedisPermissionError(_message(user, queue, refused, str(exc)), user=user, refused=refused)


def _pattern(key: str) -> str:
    """The ACL key pattern that covers ``key`` in jobq's rule (the queue's own name is escaped as a pattern)."""
    prefix = next((p for p in ("arq:", "jobq:") if key.startswith(p)), None)
    return prefix + "*" if prefix else re.sub(r"([*?\[\]\\])", r"\\\1", key)


async def _refused_keys(script: Any, keys: list[str]) -> list[str]:
    """The key patterns Redis refuses this user, each once (one call per probe key: only after a refusal)."""
    refused: list[str] = []
    for key in keys:
        try:
            await script([key], [PROBE_ID])
        except RedisError as exc:
            if _is_permission(exc) and f"keys {_pattern(key)}" not in refused:
                refused.append(f"keys {_pattern(key)}")
    return refused


async def check_permissions(redis: Any, queue: str, user: str) -> None:
    """Raise :class:`RedisPermissionError` naming each thing ``user`` may not do that a worker of ``queue`` needs.

    One round trip (the script, loaded on first use); errors that are not refusals (Redis away) propagate.
    """
    script = Scripts.of(redis)["permission_probe"]
    keys = probe_keys(queue)
    try:
        reply = await script(keys, [PROBE_ID])
    except RedisError as exc:
        found = permission_error(exc, user=user, queue=queue)
        if found is None:
            raise
        if _COMMAND.search(str(exc)) is None:  # a key pattern is missing: find which
            refused = await _refused_keys(script, keys) or found.refused
            raise RedisPermissionError(_message(user, queue, refused, str(exc)), user=user, refused=refused) from exc
        raise found from exc
    pairs = [(_text(reply[i]), _text(reply[i + 1])) for i in range(0, len(reply), 2)]
    ops = sorted({op.split(" ", 1)[0] for op, error in pairs if is_refusal(error)})
    if ops:
        refused = [f"write {', '.join(ops)}"]
        detail = "; ".join(sorted({error for _, error in pairs if is_refusal(error)}))
        raise RedisPermissionError(_message(user, queue, sorted(set(refused)), detail), user=user, refused=refused)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class PermissionCheck:
    """:func:`check_permissions` once per queue for one client (a refusal is checked again next time)."""

    def __init__(self, redis: Any, user: str) -> None:
        self._redis = redis
        self._user = user
        self._passed: set[str] = set()

    async def ensure(self, queue: str) -> None:
        """Check ``queue`` unless it passed already; raise :class:`RedisPermissionError` if refused."""
        if queue in self._passed:
            return
        try:
            await check_permissions(self._redis, queue, self._user)
        except RedisPermissionError as exc:
            raise RedisPermissionError(f"{exc}. Nothing was enqueued", user=exc.user, refused=exc.refused) from exc
        self._passed.add(queue)

    def translate(self, exc: BaseException, queue: str) -> RedisPermissionError | None:
        """``exc`` as a permission error for this client's user (see :func:`permission_error`)."""
        return permission_error(exc, user=self._user, queue=queue)
