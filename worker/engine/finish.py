"""The Redis side of the end of one try: its outcome recorded atomically.

The claim counts the start of a try and loads its job (:mod:`worker.engine.leases`: a try has no
other start), and a successful or aborted end is written with the other ends of the same loop
iteration (:mod:`worker.engine.finish_batch`); the scripts here cover the rest (retry, parking, dead
letter, release, give-back).

Every transition is one Lua script, so no crash can leave a job half-moved: a dead-lettered job is
removed from the queue in the same script that writes its dead letter; a retried job is re-scored
in the same script that counts its failure. Every script first checks the fencing token in the
job's in-progress key (see :mod:`worker.engine.leases`) and writes nothing when the lease has passed to
another worker. Scripts are retried through Redis outages (see :func:`with_redis_retries`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis

from worker.engine.finish_batch import FinishBatcher
from worker.engine.limiter import Gate
from worker.errors import CorruptJobRecord
from worker.protocol.dependencies import DEP_PREFIXES
from worker.protocol.keys import (
    JobKeys,
    dead_letter_index,
    dead_letter_store,
    marker_key,
    next_key,
    waiting_gates_key,
    waiting_key,
)
from worker.protocol.priority import DEFAULT_PRIORITY, promote_key
from worker.protocol.redis_retry import with_redis_retries
from worker.protocol.scripts import Scripts

#: arq's lifetime of the tries counter; jobq refreshes it when it schedules a retry.
RETRY_COUNTER_TTL_S = 88_400


@dataclass(frozen=True, slots=True)
class StartedTry:
    """What the start of a try found in Redis."""

    envelope: bytes | None  #: None when the job key has expired, or holds more than the largest envelope
    started: int  #: tries started so far, this one included
    failures: int  #: tries that failed (charged) before this one
    abort_requested: bool
    problem: str | None = None  #: which of the job's keys holds what jobq never writes (see CorruptJobRecord)
    oversize_bytes: int = 0  #: the size of an envelope over the largest size (then not loaded)

    @property
    def interruptions(self) -> int:
        """Earlier starts that neither failed nor finished: cut short by crashes or shutdowns."""
        return max(0, self.started - 1 - self.failures)


@dataclass(frozen=True, slots=True)
class DeadLetterBounds:
    """How many dead letters a queue keeps, and for how long."""

    max_entries: int
    retention_ms: int


class LeaseLost(Exception):
    """The job's lease belongs to another worker now: this worker must not record anything."""


class TryRecorder:
    """Runs the end-of-try scripts for one queue, fenced by the lease token."""

    def __init__(
        self,
        redis: ArqRedis,
        queue: str,
        bounds: DeadLetterBounds,
        *,
        retry_deadline_s: float = 300.0,
    ) -> None:
        self.queue = queue
        self._marker = marker_key(
            queue
        )  # armed by a retry, a release, a slot found free (an idle worker takes the job)
        self._redis = redis
        self._bounds = bounds
        self._deadline_s = retry_deadline_s
        scripts = Scripts.of(redis)  # worker/protocol/lua/<name>.lua
        self._dead_letter = scripts["dead_letter"]
        self._retry = scripts["retry"]
        self._park = scripts["park"]
        self._release = scripts["release"]
        self._give_back = scripts["give_back"]
        self.batcher = FinishBatcher(redis, queue)

    @property
    def redis(self) -> ArqRedis:
        """The connection the scripts run on."""
        return self._redis

    def keys(self, job_id: str) -> JobKeys:
        """The keys of ``job_id`` on this queue."""
        return JobKeys(job_id, self.queue)

    async def _run(
        self, script: Any, what: str, keys: list[str], args: list[Any], *, deadline_s: float | None = None
    ) -> Any:
        deadline = self._deadline_s if deadline_s is None else deadline_s
        answer = await with_redis_retries(lambda: script(keys=keys, args=args), what, deadline_s=deadline)
        if answer == -1:
            raise LeaseLost(what)
        if isinstance(answer, bytes):  # the script found one of the job's keys corrupt, and wrote nothing
            raise CorruptJobRecord(f"{what} failed: {answer.decode(errors='replace')}")
        return answer

    def _finish_keys(self, k: JobKeys) -> list[str]:
        return [k.queue, k.job, k.retry, k.in_progress, k.meta, k.abort, k.result]

    async def finish(
        self, k: JobKeys, token: str, result: bytes | None, result_ttl_ms: int, *, aborted: bool = False
    ) -> None:
        """The job is over (succeeded or aborted): store its result, remove every trace of it; release the jobs
        waiting on it (or, ``aborted``, cancel them).

        Written together with the other jobs that end in the same loop iteration (one round trip).
        """
        if not await self.batcher.finish(k.job_id, token, result, result_ttl_ms, aborted=aborted):
            raise LeaseLost(f"finish of job {k.job_id}")

    async def dead_letter(
        self, k: JobKeys, token: str, result: bytes | None, result_ttl_ms: int, entry: bytes, now_ms: int
    ) -> int:
        """Move the job to the dead letters atomically; return how many old entries were dropped."""
        keys = [*self._finish_keys(k), dead_letter_store(self.queue), dead_letter_index(self.queue), next_key(k.job_id)]
        args = [
            k.job_id, result or b"", result_ttl_ms if result else 0, token,
            entry, now_ms, self._bounds.max_entries, self._bounds.retention_ms, DEP_PREFIXES,
        ]  # fmt: skip
        return int(await self._run(self._dead_letter, f"dead letter of job {k.job_id}", keys, args))

    async def retry(
        self, k: JobKeys, token: str, next_score_ms: int, last_error: bytes, keep_ms: int,
        *, priority: tuple[int, int] = (DEFAULT_PRIORITY, 0),
    ) -> None:  # fmt: skip
        """Count the failure and schedule the next try at ``next_score_ms``, in the band of ``priority``
        (the job's priority, and now in ms: a retry due at once goes straight into its band)."""
        keys = [k.queue, k.in_progress, k.meta, k.job, k.retry]
        args: list[Any] = [k.job_id, next_score_ms, last_error, keep_ms, RETRY_COUNTER_TTL_S, token, self._marker]
        if priority[0] != DEFAULT_PRIORITY:
            args += [priority[0], priority[1], waiting_gates_key(k.queue), promote_key(k.queue)]
        await self._run(self._retry, f"retry of job {k.job_id}", keys, args)

    async def park(
        self, k: JobKeys, token: str, due_ms: int, gate: Gate, recheck_at_ms: int, *, now_ms: int | None = None
    ) -> bool:
        """Give the start back (not a try) and park the job on ``gate`` until a slot frees; ``False`` when a
        slot of the fleet limit freed meanwhile (the job is then released for an idle worker to claim now).

        ``now_ms``: given when the gate admits the job at ``recheck_at_ms`` (a rate limit): an idle worker is
        woken then."""
        keys = [k.queue, k.in_progress, k.retry, waiting_gates_key(k.queue), waiting_key(k.queue, gate.name)]
        args: list[Any] = [k.job_id, token, due_ms, gate.name, recheck_at_ms, self._marker]
        if gate.limit_key is not None:
            keys.append(gate.limit_key)
            args.append(gate.max_holders)
        if now_ms is not None:
            if gate.limit_key is None:
                args.append("")  # ARGV[7]: no fleet limit
            args.append(now_ms)
        return int(await self._run(self._park, f"parking of job {k.job_id}", keys, args)) == 1

    async def interrupt(self, k: JobKeys, token: str) -> None:
        """The try was cut short: release the lease so another worker runs the job now (not charged).

        Tried for a few seconds only: if Redis is away, the lease runs out on its own and the job comes back.
        """
        await self._run(
            self._release, f"release of job {k.job_id}", [k.in_progress], [token, self._marker], deadline_s=5.0
        )

    async def give_back(self, k: JobKeys, token: str) -> None:
        """The job was claimed (its start counted) but its try never began: undo the start, release the lease."""
        await self._run(
            self._give_back,
            f"give-back of job {k.job_id}",
            [k.in_progress, k.retry],
            [token, self._marker],
            deadline_s=5.0,
        )
