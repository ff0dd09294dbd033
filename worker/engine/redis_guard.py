"""The worker's start-up check of the Redis it was given: no eviction, persistence on.

A job queue on a Redis that may evict keys loses queued jobs, leases and retry counters silently, and
one without persistence loses every queued job on a restart. The check reads ``INFO`` (and, when AOF
is off, ``CONFIG GET save`` for RDB snapshots); ``JOBQ_REDIS_SAFETY_CHECK`` says what to do with a
finding. A Redis that does not let this user read its configuration (an ACL user without ``INFO``, a
managed Redis without ``CONFIG``) is reported as unverified and never refused: refusing would stop
every least-privilege deployment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from redis.exceptions import RedisError

from worker.errors import UnsafeRedisError

logger = logging.getLogger("jobq.redis")

SafetyMode = Literal["warn", "refuse", "off"]


@dataclass(frozen=True, slots=True)
class RedisSafety:
    """What the check found: ``problems`` are unsafe settings, ``unverified`` what could not be read."""

    problems: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """True when nothing unsafe was found (some things may still be unverified)."""
        return not self.problems


def assess(info: dict[str, Any], rdb_save: str | None) -> RedisSafety:
    """Judge Redis from its ``INFO`` fields and its ``save`` setting (None: unknown). Pure."""
    problems: list[str] = []
    unverified: list[str] = []
    policy = info.get("maxmemory_policy")
    if policy is None:
        unverified.append("maxmemory-policy (INFO has no maxmemory_policy field)")
    elif policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy!r}: Redis may evict queued jobs, leases and retry counters under memory "
            "pressure; set `maxmemory-policy noeviction`"
        )
    aof = info.get("aof_enabled")
    if aof is None:
        unverified.append("persistence (INFO has no aof_enabled field)")
    elif int(aof) != 1:
        if rdb_save is None:
            unverified.append("RDB snapshots (AOF is off and CONFIG GET save is not allowed)")
        elif not rdb_save.strip():
            problems.append(
                "persistence is off (appendonly no, no RDB save points): a Redis restart loses every queued job; "
                "set `appendonly yes`"
            )
    return RedisSafety(problems, unverified)


async def read_safety(redis: Any) -> RedisSafety:
    """Ask ``redis`` for the settings :func:`assess` judges."""
    try:
        info = {**await redis.info("memory"), **await redis.info("persistence")}
    except RedisError as exc:
        return RedisSafety(unverified=[f"eviction policy and persistence (INFO refused: {exc})"])
    rdb_save: str | None = None
    if int(info.get("aof_enabled", 1)) != 1:
        try:
            found = await redis.config_get("save")
        except RedisError:
            found = None
        if found is not None:
            value = found.get("save", found.get(b"save", ""))
            rdb_save = value.decode() if isinstance(value, bytes) else str(value)
    return assess(info, rdb_save)


async def check_redis_safety(redis: Any, mode: SafetyMode) -> RedisSafety | None:
    """Run the check as ``mode`` says: log findings, raise :class:`UnsafeRedisError` under ``refuse``."""
    if mode == "off":
        return None
    safety = await read_safety(redis)
    for item in safety.unverified:
        logger.warning("could not check Redis's %s; make sure it runs with noeviction and persistence", item)
    if safety.safe:
        return safety
    if mode == "refuse":
        raise UnsafeRedisError("refusing to start (JOBQ_REDIS_SAFETY_CHECK=refuse): " + "; ".join(safety.problems))
    for problem in safety.problems:
        logger.warning("unsafe Redis for a job queue: %s (JOBQ_REDIS_SAFETY_CHECK=refuse stops here)", problem)
    return safety
