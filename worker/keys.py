"""Every Redis key jobq reads or writes, in one place.

Jobs use arq's own layout so stock arq clients interoperate; jobq's additions live under ``jobq:``.
"""

from __future__ import annotations

from arq.constants import (
    abort_jobs_ss,
    health_check_key_suffix,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)

from .errors import InvalidQueueName

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

#: A queue is a sorted set named by its user; these prefixes are jobq's own keys and arq's per-job keys
#: (``arq:abort`` is arq's sorted set of aborted jobs), so a queue named with one would overwrite them.
RESERVED_QUEUE_PREFIXES = (
    "jobq:",
    job_key_prefix,
    in_progress_key_prefix,
    retry_key_prefix,
    result_key_prefix,
    abort_jobs_ss,
)
#: Endings of keys derived from another queue's name: arq's health-check key (``<queue>:health-check``);
#: ``:index`` because the dead letters of queue ``q:index`` would be the index of those of queue ``q``.
RESERVED_QUEUE_SUFFIXES = (health_check_key_suffix, ":index")
MAX_QUEUE_NAME_LEN = 200


def check_queue_name(queue: object, *, field: str = "queue", where: str = "") -> str:
    """``queue`` if it may name a queue, else :class:`InvalidQueueName` naming ``field`` and the rule.

    A queue name is a non-empty string of at most :data:`MAX_QUEUE_NAME_LEN` printable characters,
    without leading or trailing spaces, that does not collide with jobq's or arq's own keys. ``where``
    ends the message (e.g. `` (batch item 3)``).
    """
    problem = queue_name_problem(queue)
    if problem is None:
        return queue  # type: ignore[return-value]  # queue_name_problem accepted only a str
    raise InvalidQueueName(f"{field} {problem}{where}", field=field)


def queue_name_problem(queue: object) -> str | None:
    """What is wrong with ``queue`` as a queue name (``None`` when nothing is)."""
    if not isinstance(queue, str):
        return f"must be a queue name (a non-empty string), got {type(queue).__name__} {queue!r:.40}"
    if not queue or len(queue) > MAX_QUEUE_NAME_LEN or queue.strip() != queue:
        shown = repr(queue) if len(queue) <= 40 else f"{len(queue)} characters ({queue[:20]!r}...)"
        return f"must be 1 to {MAX_QUEUE_NAME_LEN} characters without leading or trailing spaces, got {shown}"
    if not queue.isprintable():
        return f"must not contain control characters, got {queue!r}"
    if queue.startswith(RESERVED_QUEUE_PREFIXES) or queue.endswith(RESERVED_QUEUE_SUFFIXES):
        return (
            f"{queue!r} collides with jobq's own keys: a queue name must not start with "
            f"{', '.join(RESERVED_QUEUE_PREFIXES)} nor end with {', '.join(RESERVED_QUEUE_SUFFIXES)}"
        )
    return None


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
