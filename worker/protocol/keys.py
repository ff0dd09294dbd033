"""The names of the Redis keys jobq reads or writes: every key is built from the functions and prefixes here.

Python builds keys with them; a Lua script gets its keys in KEYS, or (enqueue) the prefixes from here in ARGV;
the ACL probe of :mod:`worker.protocol.permissions` touches one key of each family.

Jobs use arq's own layout so stock arq clients interoperate; jobq's additions live under ``jobq:``.
"""

from __future__ import annotations

from worker.queue_names import (
    MAX_QUEUE_NAME_LEN,
    RESERVED_QUEUE_PREFIXES,
    RESERVED_QUEUE_SUFFIXES,
    check_queue_name,
    queue_name_problem,
)

__all__ = [
    "ABORT_PREFIX",
    "DEDUP_PREFIX",
    "DONE_PREFIX",
    "MARKER_PREFIX",
    "MAX_QUEUE_NAME_LEN",
    "META_PREFIX",
    "NEXT_PREFIX",
    "RATE_PREFIX",
    "RESERVED_QUEUE_PREFIXES",
    "RESERVED_QUEUE_SUFFIXES",
    "WAIT_PREFIX",
    "WORKERS_INDEX",
    "WORKFLOWS_KEPT",
    "WORKFLOWS_KEY",
    "WORKFLOW_PREFIX",
    "JobKeys",
    "check_queue_name",
    "cron_ledger_key",
    "dead_letter_index",
    "dead_letter_store",
    "dedup_lock_key",
    "enqueue_record",
    "limit_key",
    "marker_key",
    "marker_timer_key",
    "next_key",
    "paused_key",
    "queue_name_problem",
    "rate_key",
    "supervisor_key",
    "wait_key",
    "waiting_gates_key",
    "waiting_key",
    "waiting_prefix",
    "worker_key",
    "workflow_key",
]

# arq's per-job key prefixes (``arq.constants``), spelled out so that this module loads neither arq nor
# redis (a task module imports it through JobContext); arq is pinned exactly and a test compares them.
job_key_prefix = "arq:job:"
in_progress_key_prefix = "arq:in-progress:"
retry_key_prefix = "arq:retry:"
result_key_prefix = "arq:result:"

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


#: The family of rate limits' states (see :func:`rate_key`).
RATE_PREFIX = "jobq:rate:"


def rate_key(name: str, key: str) -> str:
    """String holding one key's theoretical arrival time (ms, server clock) under a fleet-wide rate limit (GCRA);
    it expires when the key falls idle."""
    return f"{RATE_PREFIX}{name}:{key}"


#: The family of deduplication locks (see :func:`dedup_lock_key`).
DEDUP_PREFIX = "jobq:dedup:"


def dedup_lock_key(task: str, key: str) -> str:
    """The lock of one deduplication key of a task (``@task(dedup=...)``): a string holding the id of the job
    that holds it, with an expiry (ms); see ``worker/protocol/lua/enqueue_dedup.lua``."""
    return f"{DEDUP_PREFIX}{task}:{key}"


#: The family of the jobs that wait for others (see :func:`wait_key`).
WAIT_PREFIX = "jobq:wait:"
#: The family of the lists of the jobs waiting on one (see :func:`next_key`).
NEXT_PREFIX = "jobq:next:"
#: The family of workflow records (see :func:`workflow_key`).
WORKFLOW_PREFIX = "jobq:wf:"


def wait_key(job_id: str) -> str:
    """Hash of a job that waits for other jobs and is in no queue yet (``depends_on``, a workflow step): how many
    it still waits for, its queue and priority, what cancelled it; see ``worker/protocol/lua/includes/deps.lua``."""
    return WAIT_PREFIX + job_id


def next_key(job_id: str) -> str:
    """String of the ids of the jobs waiting on ``job_id``, each followed by a space (read once by its end)."""
    return NEXT_PREFIX + job_id


def workflow_key(workflow_id: str) -> str:
    """Hash recording one workflow: its state (``staging`` until every step is written, then ``running``), its
    tree of steps (JSON), its ``on_failure`` policy and when it started."""
    return WORKFLOW_PREFIX + workflow_id


#: Sorted set of the workflows enqueued (member: workflow id, score: when it was activated, ms); the newest
#: :data:`WORKFLOWS_KEPT` are kept, and a member whose record expired is dropped by the reader that finds it.
WORKFLOWS_KEY = "jobq:workflows"
#: How many workflows the index keeps at most.
WORKFLOWS_KEPT = 10_000


#: What a queue's name is appended to for its marker (see :func:`marker_key`).
MARKER_PREFIX = "jobq:marker:"


def marker_key(queue: str) -> str:
    """The sorted set idle workers of ``queue`` block on (one member, scored by when to look next; see
    ``worker/protocol/lua/includes/marker.lua``); ``<marker>:timer`` holds the due time a worker waits for."""
    return MARKER_PREFIX + queue


def marker_timer_key(queue: str) -> str:
    """The time (ms) the worker that popped a future marker waits for, so claims do not arm it again."""
    return marker_key(queue) + ":timer"


def paused_key(queue: str) -> str:
    """Present while ``queue`` is paused (a string: the pause as JSON, ``{"at": ms, "by": "..."}``); no TTL:
    a pause lasts until it is resumed."""
    return f"jobq:paused:{queue}"


def waiting_gates_key(queue: str) -> str:
    """Sorted set of the gates (full concurrency limits) that jobs of ``queue`` wait on, each scored by when
    it is next re-checked (ms) if no freed slot wakes it first; see ``includes/waiting.lua``."""
    return f"jobq:gates:{queue}"


def waiting_prefix(queue: str) -> str:
    """What a gate's name is appended to for :func:`waiting_key` (the claim builds those keys from it)."""
    return f"jobq:waiting:{queue}:"


def waiting_key(queue: str, gate: str) -> str:
    """Sorted set of the jobs of ``queue`` waiting on ``gate`` for a slot, scored by their due time (ms)."""
    return waiting_prefix(queue) + gate


#: Sorted set of the live workers' ids, scored by their last heartbeat (ms).
WORKERS_INDEX = "jobq:workers"
#: Set of the queues jobq producers have enqueued to (each producer adds a queue once), so that stats list
#: queues that have jobs but no worker.
QUEUES_INDEX = "jobq:queues"


def worker_key(worker_id: str) -> str:
    """The heartbeat key of one worker."""
    return f"jobq:worker:{worker_id}"


def supervisor_key(supervisor_id: str) -> str:
    """The record of one supervisor's workers (hash: ``count``, and slot index -> worker id)."""
    return f"jobq:supervisor:{supervisor_id}"


def cron_ledger_key(queue: str, name: str) -> str:
    """The last tick enqueued for one schedule on one queue (ms since the epoch)."""
    return f"jobq:cron:{queue}:{name}"
