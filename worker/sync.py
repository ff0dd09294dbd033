"""A blocking facade over :class:`~worker.client.Client` for services that are not async.

The async client runs on an event loop in one background thread owned by the facade, so the same
code path (and the same connection pool) serves every call, from any thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, Self, TypeVar, overload

from pydantic import BaseModel

from .client import Client, Delay, JobRequest
from .handle import JobHandle
from .registry import Registry, TaskDef
from .results import JobInfo, JobResult
from .settings import JobqSettings
from .states import JobStatus

T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)
R = TypeVar("R")


class _LoopThread:
    """An event loop running forever in a daemon thread; coroutines are submitted to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="jobq-sync-client", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("SyncClient cannot be called from its own event loop; use Client instead")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncJobHandle(Generic[R]):
    """Blocking twin of :class:`~worker.handle.JobHandle`."""

    __slots__ = ("_handle", "_loop")

    def __init__(self, handle: JobHandle[R], loop: _LoopThread) -> None:
        self._handle = handle
        self._loop = loop

    def __repr__(self) -> str:
        return repr(self._handle).replace("<JobHandle", "<SyncJobHandle", 1)

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self._handle.job_id

    @property
    def created(self) -> bool:
        """``False`` when the enqueue found a job with this id already there."""
        return self._handle.created

    def status(self) -> JobInfo:
        """The job's status, tries, timestamps, last error and progress."""
        return self._loop.run(self._handle.status())

    def abort(self, *, wait: float | None = None) -> JobStatus:
        """Abort the job; see :meth:`JobHandle.abort`."""
        return self._loop.run(self._handle.abort(wait=wait))

    def wait(self, timeout: float | None = None) -> JobResult[R]:
        """Block until the job has finished; see :meth:`JobHandle.wait`."""
        return self._loop.run(self._handle.wait(timeout))

    def result(self, timeout: float | None = None) -> R:
        """Block until the job has finished; return its value or raise :class:`~worker.errors.JobFailed`."""
        return self._loop.run(self._handle.result(timeout))


class SyncClient:
    """Blocking producer client: ``with SyncClient(settings) as client: client.enqueue(...)``."""

    def __init__(self, settings: JobqSettings, *, registry: Registry | None = None) -> None:
        self._loop = _LoopThread()
        try:
            self._client = self._loop.run(self._make_client(settings, registry))
        except BaseException:
            self._loop.stop()
            raise

    @staticmethod
    async def _make_client(settings: JobqSettings, registry: Registry | None) -> Client:
        return Client(settings, registry=registry)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the background loop."""
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()

    @overload
    def enqueue(
        self,
        task: TaskDef[P, R],
        payload: P | Mapping[str, Any],
        *,
        job_id: str | None = None,
        defer_by: Delay | None = None,
        defer_until: datetime | None = None,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> SyncJobHandle[R]: ...
    @overload
    def enqueue(
        self,
        task: str,
        payload: Any,
        *,
        job_id: str | None = None,
        defer_by: Delay | None = None,
        defer_until: datetime | None = None,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> SyncJobHandle[Any]: ...
    def enqueue(
        self,
        task: TaskDef[Any, Any] | str,
        payload: Any,
        *,
        job_id: str | None = None,
        defer_by: Delay | None = None,
        defer_until: datetime | None = None,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> SyncJobHandle[Any]:
        """See :meth:`Client.enqueue`."""
        handle: JobHandle[Any] = self._loop.run(
            self._client.enqueue(
                task, payload, job_id=job_id, defer_by=defer_by, defer_until=defer_until, timeout=timeout, queue=queue
            )
        )
        return SyncJobHandle(handle, self._loop)

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[SyncJobHandle[Any]]:
        """See :meth:`Client.enqueue_many`."""
        handles = self._loop.run(self._client.enqueue_many(list(requests)))
        return [SyncJobHandle(h, self._loop) for h in handles]

    def abort(self, job_id: str, *, queue: str | None = None, wait: float | None = None) -> JobStatus:
        """Abort a job by id; see :meth:`JobHandle.abort`."""
        return self._loop.run(self._client.abort(job_id, queue=queue, wait=wait))

    def job(
        self, job_id: str, *, task: TaskDef[Any, Any] | str | None = None, queue: str | None = None
    ) -> SyncJobHandle[Any]:
        """A handle to an existing job."""
        return SyncJobHandle(self._client.job(job_id, task=task, queue=queue), self._loop)
