"""The producer's one script (``worker/protocol/lua/enqueue.lua``): its key prefixes, and what its refusals mean."""

from __future__ import annotations

import json

from arq.constants import job_key_prefix, result_key_prefix
from redis.exceptions import ResponseError

from worker.errors import InvalidJobOptions, InvalidQueueName
from worker.protocol.keys import ABORT_PREFIX

#: The prefixes of the script's refusals (enqueue.lua spells them out).
NOT_A_QUEUE = "JOBQ_NOT_A_QUEUE"
BAD_JOB = "JOBQ_BAD_JOB"


#: The enqueue script's last ARGV: the prefixes of the keys it builds from each job's id (see enqueue.lua).
ENQUEUE_KEY_PREFIXES = json.dumps([job_key_prefix, result_key_prefix, ABORT_PREFIX])


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


__all__ = ["BAD_JOB", "ENQUEUE_KEY_PREFIXES", "NOT_A_QUEUE", "script_error"]
