"""Job states and try outcomes: enums plus named sets, never scattered booleans."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from worker.deprecations import module_alias


class Outcome(StrEnum):
    """How one try ended, and what it did to the job. Logged, counted and stored.

    A failing try is classified twice: as ``FAILED`` or ``TIMED_OUT`` (what happened) and as
    ``RETRYING`` or ``DEAD_LETTERED`` (what happens next).
    """

    SUCCEEDED = "succeeded"  #: the task returned; the job is done
    FAILED = "failed"  #: the task raised (or the job could not be run at all)
    TIMED_OUT = "timed_out"  #: the try ran past its timeout and was cancelled
    RETRYING = "retrying"  #: after a failure: the next try is scheduled
    DEAD_LETTERED = "dead_lettered"  #: after a failure: no tries left or permanent; the job is in the dead letters
    ABORTED = "aborted"  #: cancelled on request; never retried
    INTERRUPTED = "interrupted"  #: cut short by a shutdown or a crashed worker; runs again, not charged
    WAITING = "waiting"  #: no free concurrency slot: parked until one frees; not a try, not charged
    LEASE_LOST = "lease_lost"  #: another worker took the job over; this worker recorded nothing


#: Outcomes after which a job never runs again.
TERMINAL_OUTCOMES = frozenset({Outcome.SUCCEEDED, Outcome.DEAD_LETTERED, Outcome.ABORTED})
#: What can happen to a try that did not succeed.
FAILURES = frozenset({Outcome.FAILED, Outcome.TIMED_OUT})
#: Outcomes that do not use up one of the job's tries: the job runs again as if this try never was.
UNCHARGED_OUTCOMES = frozenset({Outcome.INTERRUPTED, Outcome.WAITING, Outcome.LEASE_LOST})
#: Outcomes of a failed try that will run again (a retry): only these count as "retried".
RETRIED_OUTCOMES = frozenset({Outcome.RETRYING})
#: Outcomes of a try that ended its job without success.
FAILED_OUTCOMES = TERMINAL_OUTCOMES - {Outcome.SUCCEEDED}


class TryTally(StrEnum):
    """The one count a try's outcome adds to (a worker's heartbeat and arq's counters show them)."""

    SUCCEEDED = "succeeded"  #: the job is done
    FAILED = "failed"  #: the job ended without success (dead-lettered or aborted)
    RETRIED = "retried"  #: the try failed and the job will run again
    UNCHARGED = "uncharged"  #: not a try: interrupted, parked to wait for a slot, or lost to another worker


def tally_of(outcome: Outcome) -> TryTally | None:
    """The count a try that ended with ``outcome`` adds to; ``None`` for ``FAILED`` and ``TIMED_OUT``, which
    say what happened to a failed try, not how it ended (that is ``RETRYING`` or ``DEAD_LETTERED``)."""
    if outcome is Outcome.SUCCEEDED:
        return TryTally.SUCCEEDED
    if outcome in FAILED_OUTCOMES:
        return TryTally.FAILED
    if outcome in RETRIED_OUTCOMES:
        return TryTally.RETRIED
    if outcome in UNCHARGED_OUTCOMES:
        return TryTally.UNCHARGED
    return None


class JobStatus(StrEnum):
    """Where a job is in its life, as a producer sees it."""

    DEFERRED = "deferred"  #: queued, its time to run has not come yet
    QUEUED = "queued"  #: queued and due; waiting for a free worker
    WAITING = "waiting"  #: due, but parked until a slot of its task's concurrency limit frees
    BLOCKED = "blocked"  #: waits for the jobs it depends on (depends_on, a workflow step); in no queue yet
    CANCELLED = "cancelled"  #: a job it depends on failed for good; a replay of that job that succeeds resumes it
    IN_PROGRESS = "in_progress"  #: a worker is running a try
    RETRYING = "retrying"  #: a try failed; waiting for the next one
    SUCCEEDED = "succeeded"  #: finished; the result is stored
    DEAD_LETTERED = "dead_lettered"  #: failed for good; the job is in the dead letters
    ABORTED = "aborted"  #: aborted on request
    FAILED = "failed"  #: finished unsuccessfully by a worker that keeps no dead letters (stock arq)
    NOT_FOUND = "not_found"  #: unknown id, or the result has expired


#: Statuses a job never leaves.
TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.DEAD_LETTERED, JobStatus.ABORTED, JobStatus.FAILED})

#: The job status that each terminal outcome leaves behind.
STATUS_OF_OUTCOME = {
    Outcome.SUCCEEDED: JobStatus.SUCCEEDED,
    Outcome.DEAD_LETTERED: JobStatus.DEAD_LETTERED,
    Outcome.ABORTED: JobStatus.ABORTED,
}


if TYPE_CHECKING:
    # Type checkers accept the old name; at run time it warns.
    TERMINAL = TERMINAL_STATUSES
else:

    def __getattr__(name: str) -> Any:
        # TERMINAL was renamed TERMINAL_STATUSES; the old name works, with a DeprecationWarning, until jobq 0.3.
        return module_alias(__name__, {"TERMINAL": "TERMINAL_STATUSES"}, name, globals())
