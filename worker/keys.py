"""Every Redis key jobq reads or writes, in one place.

Jobs use arq's own layout so stock arq clients interoperate; jobq's additions live under ``jobq:``.
"""

from __future__ import annotations

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix

from .queue_names import (
    MAX_QUEUE_NAME_LEN,
    RESERVED_QUEUE_PREFIXES,
    RESERVED_QUEUE_SUFFIXES,
    check_queue_name,
    queue_name_problem,
)

__all__ = [
    "ABORT_PREFIX",
    "DONE_PREFIX",
    "MAX_QUEUE_NAME_LEN",
    "META_PREFIX",
    "RESERVED_QUEUE_PREFIXES",
    "RESERVED_QUEUE_SUFFIXES",
    "JobKeys",
    "check_queue_name",
    "dead_letter_index",
    "dead_letter_store",
    "enqueue_record",
    "limit_key",
    "queue_name_problem",
    "wake_channel",
]

META_PREFIX = "jobq:meta:"
ABORT_PREFIX = "jobq:abort:"
#: Left for a few minutes by the end of a job that stores no result: a second send of that end (its reply
#: was lost) finds it and reports the end as written.
DONE_PREFIX = "jobq:done:"
ENQUEUE_RECORD_PREFIX = "jobq:enqueued:"


def enqueue_record(request_id: str) -> str:
    """What one enqueue call created, kept briefly so that a re-sent call is answered the same (string)."""
    return ENQUEUE_RECORD_PREFIX + request_id


class JobKeys:
    """The keys of one job on one queue."""

    __slots__ = ("abort", "in_progress", "job", "job_id", "meta", "queue", "result", "retry")

    def __init__(self, job_id: str, queue: str) -> None:
        self.job_id = job_id
        self.queue = queue
        self.job = job_key_prefix + job_id  # the envelope (arq)
        self.in_progress = in_progress_key_prefix + job_id  # set while a worker runs a try (arq)
        self.retry = retry_key_prefix + job_id  # tries started, incremented at each start (arq)
        self.result = result_key_prefix + job_id  # the stored result envelope (arq)
        self.meta = META_PREFIX + job_id  # failures so far, last error, progress (hash)
        self.abort = ABORT_PREFIX + job_id  # abort requested while the job runs


def dead_letter_store(queue: str) -> str:
    """Hash of dead-letter entries (job id -> entry JSON) of one queue."""
    return f"jobq:dlq:{queue}"


def dead_letter_index(queue: str) -> str:
    """Sorted set of the dead letters of one queue, scored by the time they were written (ms)."""
    return f"jobq:dlq:{queue}:index"


def limit_key(name: str, key: str) -> str:
    """Sorted set of the holders of one distributed concurrency limit, scored by lease expiry (ms)."""
    return f"jobq:limit:{name}:{key}"


def wake_channel(queue: str) -> str:
    """Pub/sub channel on which producers tell the idle workers of ``queue`` that a job is waiting."""
    return f"jobq:wake:{queue}"
