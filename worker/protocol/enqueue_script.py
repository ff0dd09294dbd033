"""The one writer of new jobs (``worker/protocol/lua/enqueue.lua``): how to call it, and what its refusals mean.

A producer's enqueue, a cron tick and a dead-letter replay all go through :func:`call_enqueue`: the same
checks, the same record that answers a re-sent call, the same wake-up of one idle worker (the queue's marker). A cron
tick and a replay add a :class:`Guard` that the script checks before writing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import orjson
from redis.exceptions import ResponseError

from worker.errors import InvalidJobOptions, InvalidQueueName
from worker.protocol.fairness import fair_prefix
from worker.protocol.keys import (
    ABORT_PREFIX,
    META_PREFIX,
    cron_ledger_key,
    dead_letter_index,
    dead_letter_store,
    enqueue_record,
    job_key_prefix,
    marker_key,
    result_key_prefix,
    retry_key_prefix,
    waiting_gates_key,
)
from worker.protocol.priority import promote_key
from worker.protocol.scripts import ScriptCall
from worker.redis_settings import RedisSettings

__all__ = [
    "BAD_JOB",
    "DEFAULT_RECORD_TTL_MS",
    "ENQUEUE_KEY_PREFIXES",
    "GIVEN_ID",
    "NOT_A_QUEUE",
    "RANDOM_ID",
    "REPLAYED",
    "Guard",
    "JobFlag",
    "Placement",
    "call_enqueue",
    "pack_jobs",
    "record_ttl_ms",
    "script_error",
]

#: The prefixes of the script's refusals (enqueue.lua spells them out).
NOT_A_QUEUE = "JOBQ_NOT_A_QUEUE"
BAD_JOB = "JOBQ_BAD_JOB"

#: The script's ARGV[4]: the prefixes of the keys it builds from each job's id (see enqueue.lua).
ENQUEUE_KEY_PREFIXES = json.dumps([job_key_prefix, result_key_prefix, ABORT_PREFIX, retry_key_prefix, META_PREFIX])

#: A job's flag: how the script treats its id.
JobFlag = Literal["0", "1", "r"]
RANDOM_ID: JobFlag = "0"  #: drawn at random by the client: it cannot be taken, nothing is read
GIVEN_ID: JobFlag = "1"  #: given by the caller: refused when the job or its result is there
REPLAYED: JobFlag = "r"  #: a replayed dead letter: refused when the job is there; its old keys are cleared

#: How long the record of a call is kept when no settings say otherwise (the defaults' :func:`record_ttl_ms`).
DEFAULT_RECORD_TTL_MS = 74_000


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a call's jobs go in their queue, in their order: their priorities (worker.protocol.priority), their
    fairness keys ('' for none, worker.protocol.fairness), and the producer's time that tells due from deferred."""

    priorities: list[int]
    now_ms: int
    fair_keys: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Guard:
    """A condition the script checks before it writes anything: a cron tick's ledger or a dead letter's entry."""

    kind: Literal["tick", "replay"]
    keys: tuple[str, ...]
    value: str | bytes | int

    @classmethod
    def tick(cls, queue: str, schedule: str, tick_ms: int) -> Guard:
        """Enqueue only if ``tick_ms`` is later than the schedule's last enqueued tick; record it if so."""
        return cls("tick", (cron_ledger_key(queue, schedule),), tick_ms)

    @classmethod
    def replay(cls, queue: str, entry: bytes) -> Guard:
        """Enqueue only if the job's dead letter is still ``entry``; remove the dead letter if so."""
        return cls("replay", (dead_letter_store(queue), dead_letter_index(queue)), entry)


def pack_jobs(jobs: Iterable[tuple[str, int, int, str, JobFlag]]) -> bytes:
    """The script's ARGV[2]: each job's id, score (ms), job key TTL (ms), envelope and flag, in one JSON array."""
    return orjson.dumps(
        [f for job_id, score, ttl, body, flag in jobs for f in (job_id, str(score), str(ttl), body, flag)]
    )


async def call_enqueue(
    script: ScriptCall, queue: str, packed: bytes, record_ttl: int, guard: Guard | None = None,
    *, placement: Placement | None = None,
) -> list[int]:  # fmt: skip
    """Write the packed jobs onto ``queue``: 1 (created) or 0 per job, ``[]`` when the guard refused.
    Without ``placement`` every job has the default priority and no fairness key.

    Raises redis-py's :class:`ResponseError` on a refusal of the script; :func:`script_error` types it.
    """
    # A new request id per call, the same for redis-py's re-sends of it: the script answers those from its record.
    keys = [queue, enqueue_record(os.urandom(12).hex())]
    args: list[str | bytes | int] = [marker_key(queue), packed, record_ttl, ENQUEUE_KEY_PREFIXES, "", ""]
    if guard is not None:
        keys.extend(guard.keys)
        args[4:] = [guard.kind, guard.value]
    if placement is not None:
        args += [orjson.dumps(placement.priorities), placement.now_ms, waiting_gates_key(queue), promote_key(queue)]
        if placement.fair_keys is not None:
            args += [orjson.dumps(placement.fair_keys), fair_prefix(queue)]
    return list(await script(keys, args))


def record_ttl_ms(settings: RedisSettings) -> int:
    """How long an enqueue's record is kept: longer than redis-py may take to re-send the call.

    redis-py sends a command again up to 3 times after a dropped connection (``worker.protocol.connection``),
    each time after a backoff of at most 1 s and within a connect and a socket timeout.
    """
    per_try_s = settings.redis_connect_timeout_s + settings.redis_socket_timeout_s + 1
    return round((4 * per_try_s + 30) * 1000)


def script_error(exc: ResponseError, queue: str) -> Exception:
    """The typed error for a refusal of the enqueue script (any other Redis error is returned as it is)."""
    message = str(exc)
    if message.startswith(NOT_A_QUEUE):
        kind = message[len(NOT_A_QUEUE) :].strip()
        return InvalidQueueName(
            f"queue {queue!r} names a Redis {kind}, not a queue (a sorted set); use another queue name",
            field="queue",
        )
    if message.startswith(BAD_JOB):
        item = message[len(BAD_JOB) :].strip()
        return InvalidJobOptions(
            f"the enqueue script refused job {item} of the call (its score or TTL); nothing was written"
        )
    return exc
