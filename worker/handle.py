"""Job handles: the producer's view of one job's status and result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from arq.constants import in_progress_key_prefix, result_key_prefix

from .errors import JobFailed, JobNotFound, ResultTimeout
from .serialization import EnvelopeCodec

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from .registry import TaskDef

R = TypeVar("R")

#: How often :meth:`JobHandle.wait` looks at Redis: it starts fast and slows down to the cap.
POLL_FIRST_S = 0.005
POLL_MAX_S = 0.25


class JobStatus(StrEnum):
    """Where a job is in its life."""

    DEFERRED = "deferred"  #: queued, its time to run has not come yet
    QUEUED = "queued"  #: queued and due; waiting for a free worker
    IN_PROGRESS = "in_progress"  #: a worker is running a try
    SUCCEEDED = "succeeded"  #: finished; the result is stored
    FAILED = "failed"  #: finished unsuccessfully; the error is stored
    NOT_FOUND = "not_found"  #: unknown id, or the result has expired


#: Statuses a job never leaves.
TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


def _ms_to_datetime(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class JobResult(Generic[R]):
    """A finished job as stored in Redis: its value or its error, and when it ran.

    ``value`` is what the task returned, rebuilt as its return model when that is a pydantic model
    and the task is known; otherwise the stored JSON value. It is ``None`` when the job failed.
    """

    job_id: str
    task: str
    success: bool
    value: R | None
    error: JobFailed | None
    tries: int
    enqueued_at: datetime
    started_at: datetime
    finished_at: datetime
    queue_name: str

    @property
    def duration_s(self) -> float:
        """Seconds the last try ran."""
        return (self.finished_at - self.started_at).total_seconds()

    def unwrap(self) -> R:
        """The value, or raise the stored :class:`JobFailed`."""
        if self.error is not None:
            raise self.error
        return cast(R, self.value)

    @classmethod
    def from_arq(cls, job_id: str, d: dict[str, Any], task_def: TaskDef[Any, R] | None) -> JobResult[R]:
        """Build from arq's decoded result dict."""
        success = bool(d.get("s"))
        raw = d.get("r")
        error = None
        if not success:
            error = raw if isinstance(raw, JobFailed) else JobFailed("UnknownError", str(raw))
        value = task_def.load_result(raw) if success and task_def is not None else (raw if success else None)
        return cls(
            job_id=job_id,
            task=str(d.get("f", "")),
            success=success,
            value=value,
            error=error,
            tries=int(d.get("t") or 1),
            enqueued_at=_ms_to_datetime(d.get("et", 0)),
            started_at=_ms_to_datetime(d.get("st", 0)),
            finished_at=_ms_to_datetime(d.get("ft", 0)),
            queue_name=str(d.get("q", "")),
        )


class JobHandle(Generic[R]):
    """A reference to one job: ask for its status, or wait for its result.

    ``created`` is ``False`` when an enqueue with an existing ``job_id`` found the job already there
    (nothing new was written).
    """

    __slots__ = ("_clock", "_codec", "_redis", "_task", "created", "job_id", "queue_name")

    def __init__(
        self,
        job_id: str,
        *,
        redis: ArqRedis,
        codec: EnvelopeCodec,
        queue_name: str,
        task: TaskDef[Any, R] | None = None,
        created: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.job_id = job_id
        self.queue_name = queue_name
        self.created = created
        self._redis = redis
        self._codec = codec
        self._task = task
        self._clock = clock

    def __repr__(self) -> str:
        task = f" {self._task.name}" if self._task else ""
        return f"<JobHandle {self.job_id}{task} created={self.created}>"

    async def _read(self) -> tuple[bytes | None, int, float | None]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(result_key_prefix + self.job_id)
            pipe.exists(in_progress_key_prefix + self.job_id)
            pipe.zscore(self.queue_name, self.job_id)
            raw, running, score = await pipe.execute()
        return raw, int(running), score

    def _decode(self, raw: bytes) -> JobResult[R]:
        return JobResult.from_arq(self.job_id, self._codec.loads(raw), self._task)

    async def status(self) -> JobStatus:
        """The job's current status."""
        raw, running, score = await self._read()
        if raw is not None:
            return JobStatus.SUCCEEDED if self._decode(raw).success else JobStatus.FAILED
        if running:
            return JobStatus.IN_PROGRESS
        if score is not None:
            return JobStatus.DEFERRED if score > self._clock() * 1000 else JobStatus.QUEUED
        return JobStatus.NOT_FOUND

    async def result_info(self) -> JobResult[R] | None:
        """The finished job, or ``None`` while it has not finished. Does not wait."""
        raw = await self._redis.get(result_key_prefix + self.job_id)
        return None if raw is None else self._decode(raw)

    async def wait(self, timeout: float | None = None) -> JobResult[R]:
        """Wait until the job has finished and return it, failed or not.

        Raises :class:`ResultTimeout` after ``timeout`` seconds, and :class:`JobNotFound` when the
        job is neither queued, running nor finished with a stored result.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = POLL_FIRST_S
        while True:
            raw, running, score = await self._read()
            if raw is not None:
                return self._decode(raw)
            if not running and score is None:
                raise JobNotFound(
                    f"job {self.job_id} is not queued, not running and has no stored result on queue "
                    f"{self.queue_name!r}: it never existed, its result expired, or its task keeps none"
                )
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ResultTimeout(f"job {self.job_id} did not finish within {timeout:g}s")
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the job and return its value; raise :class:`JobFailed` if it failed."""
        return (await self.wait(timeout)).unwrap()
