"""A blocking facade over :class:`~worker.client.producer.Client` for services that are not async.

The async client runs on an event loop in one background thread owned by the facade, so the same
code path (and the same connection pool) serves every call, from any thread. A forked child (gunicorn
``--preload``, uWSGI) inherits neither that thread nor a usable connection: the facade notices the
new process id at its next call and starts a loop and a connection of the child's own.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, Self, TypeVar, overload

from pydantic import BaseModel

from worker.client.handle import JobHandle
from worker.client.producer import Client, Delay, JobRequest
from worker.client.results import JobInfo, JobResult
from worker.deprecations import renamed_argument
from worker.settings import JobqSettings
from worker.states import JobStatus
from worker.taskdef.dedup import DedupOutcome
from worker.taskdef.registry import TaskDef, TaskRegistry

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
    """Blocking twin of :class:`~worker.client.handle.JobHandle`."""

    __slots__ = ("_handle", "_owner")

    def __init__(self, handle: JobHandle[R], owner: SyncClient) -> None:
        self._handle = handle
        self._owner = owner

    def _run(self, call: Callable[[JobHandle[R]], Coroutine[Any, Any, T]]) -> T:
        loop, client = self._owner.current()
        if self._handle.redis is not client.redis:  # made before a fork: the child's connection serves it
            self._handle = client.rebind(self._handle)
        return loop.run(call(self._handle))

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

    @property
    def deduplicated(self) -> DedupOutcome | None:
        """What the task's dedup mode did with the enqueue, or ``None``; see :class:`JobHandle`."""
        return self._handle.deduplicated

    def status(self) -> JobInfo:
        """The job's status, tries, timestamps, last error and progress."""
        return self._run(lambda h: h.status())

    def abort(self, *, wait_s: float | None = None, wait: float | None = None) -> JobStatus:
        """Abort the job; see :meth:`JobHandle.abort` (``wait`` is the deprecated spelling of ``wait_s``)."""
        if wait is not None:
            wait_s = renamed_argument("SyncJobHandle.abort", "wait", wait, "wait_s", wait_s)
        return self._run(lambda h: h.abort(wait_s=wait_s))

    def wait(self, timeout_s: float | None = None, *, timeout: float | None = None) -> JobResult[R]:
        """Block until the job has finished; see :meth:`JobHandle.wait` (``timeout`` is deprecated)."""
        if timeout is not None:
            timeout_s = renamed_argument("SyncJobHandle.wait", "timeout", timeout, "timeout_s", timeout_s)
        return self._run(lambda h: h.wait(timeout_s))

    def result(self, timeout_s: float | None = None, *, timeout: float | None = None) -> R:
        """Block until the job has finished; return its value or raise :class:`~worker.errors.JobFailed`.

        ``timeout`` is the deprecated spelling of ``timeout_s``.
        """
        if timeout is not None:
            timeout_s = renamed_argument("SyncJobHandle.result", "timeout", timeout, "timeout_s", timeout_s)
        return self._run(lambda h: h.result(timeout_s))


class SyncClient:
    """Blocking producer client: ``with SyncClient(settings) as client: client.enqueue(...)``."""

    def __init__(self, settings: JobqSettings, *, registry: TaskRegistry | None = None) -> None:
        self._settings = settings
        self._registry = registry
        self._inherited: list[tuple[_LoopThread, Client]] = []  # a parent's, kept (never used nor closed)
        self._pid = os.getpid()
        self._loop, self._client = self._start()

    def _start(self) -> tuple[_LoopThread, Client]:
        loop = _LoopThread()
        try:
            return loop, loop.run(self._make_client(self._settings, self._registry))
        except BaseException:
            loop.stop()
            raise

    def current(self) -> tuple[_LoopThread, Client]:
        """The loop and client of this process: fresh ones in a forked child, at its first call."""
        if os.getpid() != self._pid:
            # The loop's thread did not survive the fork and the pool's sockets are the parent's: leave
            # both alone (closing them would close the parent's connections) and start the child's own.
            self._inherited.append((self._loop, self._client))
            self._pid = os.getpid()
            self._loop, self._client = self._start()
        return self._loop, self._client

    def _run(self, call: Callable[[Client], Coroutine[Any, Any, T]]) -> T:
        loop, client = self.current()
        return loop.run(call(client))

    @staticmethod
    async def _make_client(settings: JobqSettings, registry: TaskRegistry | None) -> Client:
        return Client(settings, registry=registry)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the background loop."""
        if os.getpid() != self._pid:
            return  # a forked child that never used it: nothing of its own to close
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
        timeout_s: float | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        priority: int | None = None,
        dedup_key: str | None = None,
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
        timeout_s: float | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        priority: int | None = None,
        dedup_key: str | None = None,
    ) -> SyncJobHandle[Any]: ...
    def enqueue(
        self,
        task: TaskDef[Any, Any] | str,
        payload: Any,
        *,
        job_id: str | None = None,
        defer_by: Delay | None = None,
        defer_until: datetime | None = None,
        timeout_s: float | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        priority: int | None = None,
        dedup_key: str | None = None,
    ) -> SyncJobHandle[Any]:
        """See :meth:`Client.enqueue` (``timeout`` is the deprecated spelling of ``timeout_s``)."""
        if timeout is not None:
            timeout_s = renamed_argument("SyncClient.enqueue", "timeout", timeout, "timeout_s", timeout_s)
        handle: JobHandle[Any] = self._run(
            lambda c: c.enqueue(
                task,
                payload,
                job_id=job_id,
                defer_by=defer_by,
                defer_until=defer_until,
                timeout_s=timeout_s,
                queue=queue,
                priority=priority,
                dedup_key=dedup_key,
            )
        )
        return SyncJobHandle(handle, self)

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[SyncJobHandle[Any]]:
        """See :meth:`Client.enqueue_many`."""
        batch = list(requests)
        handles = self._run(lambda c: c.enqueue_many(batch))
        return [SyncJobHandle(h, self) for h in handles]

    def abort(
        self, job_id: str, *, queue: str | None = None, wait_s: float | None = None, wait: float | None = None
    ) -> JobStatus:
        """Abort a job by id; see :meth:`JobHandle.abort` (``wait`` is the deprecated spelling of ``wait_s``)."""
        if wait is not None:
            wait_s = renamed_argument("SyncClient.abort", "wait", wait, "wait_s", wait_s)
        return self._run(lambda c: c.abort(job_id, queue=queue, wait_s=wait_s))

    def pause(self, queue: str | None = None, *, by: str | None = None) -> bool:
        """Pause a queue; see :meth:`Client.pause`."""
        return self._run(lambda c: c.pause(queue, by=by))

    def resume(self, queue: str | None = None) -> bool:
        """Resume a paused queue; see :meth:`Client.resume`."""
        return self._run(lambda c: c.resume(queue))

    def job(
        self, job_id: str, *, task: TaskDef[Any, Any] | str | None = None, queue: str | None = None
    ) -> SyncJobHandle[Any]:
        """A handle to an existing job."""
        return SyncJobHandle(self.current()[1].job(job_id, task=task, queue=queue), self)
