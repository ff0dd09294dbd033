"""Job handles: one job by id — ask for its status, wait for its result, or abort it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from redis.exceptions import NoPermissionError

from worker.client.abort import request_abort
from worker.client.dead_letters import DeadLetter
from worker.client.results import JobInfo, JobResult, at
from worker.deprecations import renamed_argument
from worker.errors import JobCancelled, JobFailed, JobNotFound, ResultTimeout, SerializationError
from worker.protocol.dependencies import Blocked
from worker.protocol.keys import JobKeys, dead_letter_store, wait_key
from worker.protocol.priority import QueueScore
from worker.protocol.serialization import EnvelopeCodec
from worker.protocol.waiting import is_waiting
from worker.states import JobStatus

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from worker.taskdef.dedup import DedupOutcome
    from worker.taskdef.registry import TaskDef

R = TypeVar("R")

#: How often :meth:`JobHandle.wait` looks at Redis: it starts fast and slows down to the cap.
POLL_FIRST_S = 0.005
POLL_MAX_S = 0.25


@dataclass(frozen=True, slots=True)
class HandleContext:
    """What every handle of one client shares: its connection, codec, clock and result TTL."""

    redis: ArqRedis
    codec: EnvelopeCodec
    clock: Callable[[], float] = time.time
    result_ttl_ms: int = 3_600_000


class JobHandle(Generic[R]):
    """A reference to one job: its status, its result, or its abort.

    ``created`` is ``False`` when an enqueue with an existing ``job_id`` found the job already there
    (nothing new was written), or when its task's dedup mode sent it to another job: then ``deduplicated``
    says what happened (``DROPPED``: nothing written; ``REPLACED``: a Debounce gave that pending job the new
    payload and start time) and ``job_id`` is that other job's. ``deduplicated`` is ``None`` otherwise.
    """

    __slots__ = ("_ctx", "_task", "created", "deduplicated", "job_id", "queue_name")

    def __init__(
        self,
        job_id: str,
        queue_name: str,
        context: HandleContext,
        task: TaskDef[Any, R] | None = None,
        created: bool = True,
        deduplicated: DedupOutcome | None = None,
    ) -> None:
        """A handle to job ``job_id`` of ``queue_name``, reading it through ``context``.

        ``Client.job`` and the enqueue calls make handles; those of one client share its context. A batch
        makes thousands: the producer calls this positionally, which costs no more than five attribute writes.
        """
        self.job_id = job_id
        self.queue_name = queue_name
        self.created = created
        self.deduplicated = deduplicated
        self._task = task
        self._ctx = context

    @property
    def task(self) -> TaskDef[Any, R] | None:
        """The job's task when the handle knows it (results then come back as its result model)."""
        return self._task

    @property
    def redis(self) -> ArqRedis:
        """The connection this handle reads the job through (its client's)."""
        return self._ctx.redis

    @property
    def _redis(self) -> ArqRedis:
        return self._ctx.redis

    @property
    def _codec(self) -> EnvelopeCodec:
        return self._ctx.codec

    @property
    def _clock(self) -> Callable[[], float]:
        return self._ctx.clock

    @property
    def _keys(self) -> JobKeys:
        return JobKeys(self.job_id, self.queue_name)  # built when asked: a batch's handles are rarely used

    def __repr__(self) -> str:
        task = f" {self._task.name}" if self._task else ""
        return f"<JobHandle {self.job_id}{task} created={self.created}>"

    def _decode(self, raw: bytes) -> JobResult[R]:
        return JobResult.from_arq(self.job_id, self._codec.loads_result(raw, job_id=self.job_id), self._task)

    async def _dead_letter(self) -> DeadLetter | None:
        raw = await cast("Awaitable[bytes | None]", self._redis.hget(dead_letter_store(self.queue_name), self.job_id))
        return None if raw is None else DeadLetter.from_json(raw)

    async def _blocked(self) -> Blocked | None:
        """The job's record while it waits for other jobs (read only for a job in no queue and not running); none
        for a Redis user whose ACL predates the dependency keys (it cannot have written any)."""
        try:
            n, cause = await cast(
                "Awaitable[list[bytes | None]]", self._redis.hmget(wait_key(self.job_id), ["n", "cause"])
            )
        except NoPermissionError:
            return None
        return Blocked.of(n, cause)

    async def status(self) -> JobInfo:
        """The job's status, tries, timestamps, last error and progress, read in one round trip."""
        info = await self._status()
        if info.status is JobStatus.NOT_FOUND and await self._moved_on():
            info = await self._status()  # it left its blocked record between the reads: read it where it is now
        return info

    async def _status(self) -> JobInfo:
        k = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(k.result)
            pipe.exists(k.in_progress)
            pipe.zscore(k.queue, k.job_id)
            pipe.hgetall(k.meta)
            pipe.get(k.job)
            pipe.get(k.retry)
            raw_result, running, score, meta, envelope, started = await pipe.execute()
        if raw_result is not None:
            return self._finished_info(self._decode(raw_result))
        failures = int(meta.get(b"failures", 0))
        blocked = await self._blocked() if score is None and not running and envelope is not None else None
        status = self._open_status(bool(running), score, failures)
        if blocked is not None:
            status = JobStatus.BLOCKED if blocked.cancelled_by is None else JobStatus.CANCELLED
        info = JobInfo(
            job_id=self.job_id,
            status=status,
            tries=failures + (1 if running else 0),
            interruptions=max(0, int(started or 0) - failures - (1 if running else 0)),
            scheduled_at=at(QueueScore.of(score).due_ms) if score is not None else None,
            last_error=self._last_error(meta.get(b"last_error")),
            progress=float(meta[b"progress"]) if b"progress" in meta else None,
            progress_message=meta.get(b"progress_message", b"").decode() or None,
        )
        if info.status is JobStatus.NOT_FOUND:
            entry = await self._dead_letter()
            return info if entry is None else self._finished_info(JobResult.from_dead_letter(entry))
        return self._with_envelope(info, envelope)

    def _open_status(self, running: bool, score: float | None, failures: int) -> JobStatus:
        if running:
            return JobStatus.IN_PROGRESS
        if score is None:
            return JobStatus.NOT_FOUND
        if is_waiting(score):
            return JobStatus.WAITING
        if failures:
            return JobStatus.RETRYING
        return JobStatus.DEFERRED if score > self._clock() * 1000 else JobStatus.QUEUED

    def _finished_info(self, result: JobResult[Any]) -> JobInfo:
        return JobInfo(
            job_id=self.job_id,
            status=result.status,
            task=result.task or None,
            tries=result.tries,
            interruptions=result.interruptions,
            enqueued_at=result.enqueued_at,
            started_at=result.started_at,
            finished_at=result.finished_at,
            last_error=result.error,
        )

    def _last_error(self, raw: bytes | None) -> JobFailed | None:
        if raw is None:
            return None
        try:
            e = self._codec.loads(raw)["e"]
        except (SerializationError, KeyError, TypeError):
            return None
        return JobFailed(str(e.get("type")), str(e.get("message", "")), e.get("traceback"))

    def _with_envelope(self, info: JobInfo, envelope: bytes | None) -> JobInfo:
        if envelope is None:
            return info
        try:
            body = self._codec.loads_job(envelope, job_id=self.job_id, queue=self._keys.queue)
        except SerializationError:
            return info
        return replace(info, task=body.get("f"), enqueued_at=at(body.get("et")))

    async def _moved_on(self) -> bool:
        """Whether the job has a result, a lease or a queue score now: read after its blocked record was found gone
        (a dependency's end queues a blocked job, atomically, between the reads of the two)."""
        k = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.exists(k.result, k.in_progress)
            pipe.zscore(k.queue, k.job_id)
            present, score = await pipe.execute()
        return bool(present) or score is not None

    async def wait(self, timeout_s: float | None = None, *, timeout: float | None = None) -> JobResult[R]:
        """Wait until the job has finished and return it, whatever its outcome.

        Raises :class:`ResultTimeout` after ``timeout_s`` seconds, and :class:`JobNotFound` when the
        job is neither queued, running, blocked, finished with a stored result, nor a dead letter, and
        :class:`JobCancelled` when a job it depends on failed for good.
        ``timeout`` is the deprecated spelling of ``timeout_s`` (it warns; gone in jobq 0.3).
        """
        if timeout is not None:
            timeout_s = renamed_argument("JobHandle.wait", "timeout", timeout, "timeout_s", timeout_s)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay = POLL_FIRST_S
        k = self._keys
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(k.result)
                pipe.exists(k.in_progress)
                pipe.zscore(k.queue, k.job_id)
                raw, running, score = await pipe.execute()
            if raw is not None:
                return self._decode(raw)
            blocked = await self._blocked() if not running and score is None else None
            if blocked is not None and blocked.cancelled_by is not None:
                raise JobCancelled(
                    f"job {self.job_id} was cancelled: job {blocked.cancelled_by}, which it depends on, failed for "
                    f"good (a replay of it that succeeds resumes this one)",
                    cancelled_by=blocked.cancelled_by,
                )
            if not running and score is None and blocked is None and await self._moved_on():
                continue  # queued (or further) since the first read: it left its blocked record in between
            if not running and score is None and blocked is None:
                entry = await self._dead_letter()
                if entry is not None:
                    return cast(JobResult[R], JobResult.from_dead_letter(entry))
                raise JobNotFound(
                    f"job {self.job_id} is not queued, not running and has no stored result on queue "
                    f"{self.queue_name!r}: it never existed, its result expired, or its task keeps none"
                )
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ResultTimeout(f"job {self.job_id} did not finish within {timeout_s:g}s")
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)

    async def result(self, timeout_s: float | None = None, *, timeout: float | None = None) -> R:
        """Wait for the job and return its value; raise :class:`JobFailed` if it did not succeed.

        ``timeout_s`` as in :meth:`wait`; ``timeout`` is its deprecated spelling.
        """
        if timeout is not None:
            timeout_s = renamed_argument("JobHandle.result", "timeout", timeout, "timeout_s", timeout_s)
        return (await self.wait(timeout_s)).unwrap()

    async def abort(self, *, wait_s: float | None = None, wait: float | None = None) -> JobStatus:
        """Abort the job. A queued job is removed at once (ABORTED); a running one is cancelled by its
        worker within about ``JOBQ_ABORT_CHECK_S``. With ``wait_s``, wait that many seconds for a running
        job to stop. Returns the job's status afterwards (a finished job keeps its own). ``wait`` is the
        deprecated spelling of ``wait_s``."""
        if wait is not None:
            wait_s = renamed_argument("JobHandle.abort", "wait", wait, "wait_s", wait_s)
        now_ms = round(self._clock() * 1000)
        status = await request_abort(
            self._redis, self._codec, self._keys, now_ms=now_ms, result_ttl_ms=self._ctx.result_ttl_ms
        )
        if status is None:
            return (await self.status()).status
        if status is JobStatus.IN_PROGRESS and wait_s:
            try:
                return (await self.wait(wait_s)).status
            except ResultTimeout:
                return JobStatus.IN_PROGRESS
        return status
