"""What a running task sees: :class:`JobContext`, a typed view of the job and its try."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from worker.errors import TaskDefinitionError
from worker.protocol.keys import JobKeys

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from worker.settings import JobqSettings
    from worker.taskdef.registry import TaskDef
    from worker.taskdef.requests import JobRequest
    from worker.taskdef.services import Resource
    from worker.taskdef.workflow import Node

T = TypeVar("T")

MAX_PROGRESS_MESSAGE = 1000


class EnqueuedJob(Protocol):
    """What ``ctx.enqueue`` returns: a :class:`~worker.client.handle.JobHandle` of the new job."""

    job_id: str
    created: bool

    async def result(self, timeout_s: float | None = None, *, timeout: float | None = None) -> Any:
        """The job's value once it has finished (see :meth:`JobHandle.result`)."""
        ...


class EnqueuedWorkflow(Protocol):
    """What ``ctx.enqueue_workflow`` returns: a :class:`~worker.client.workflow_status.WorkflowHandle`."""

    workflow_id: str

    @property
    def last(self) -> Sequence[EnqueuedJob]:
        """The handles of the steps nothing waits for (a chord's callback, a chain's last step), in tree order."""
        ...


class TaskServices(Protocol):
    """What a running task may call through its context; a worker provides it (``worker.engine.services``).

    A protocol, so that this layer (what a task module declares) needs neither the client nor the engine.
    """

    @property
    def settings(self) -> JobqSettings: ...

    async def resource(self, wanted: Resource[T]) -> T:
        """The value of a resource shared by the worker's jobs, opened on first use."""
        ...

    async def enqueue(self, task: TaskDef[Any, Any] | str, payload: Any, **options: Any) -> EnqueuedJob:
        """Enqueue another job."""
        ...

    async def enqueue_many(self, requests: Iterable[JobRequest]) -> Sequence[EnqueuedJob]:
        """Enqueue a batch of jobs."""
        ...

    async def enqueue_workflow(
        self, workflow: Node, *, workflow_id: str | None = None, on_failure: str = "stop"
    ) -> EnqueuedWorkflow:
        """Enqueue a workflow, atomically."""
        ...


@dataclass(frozen=True, slots=True)
class JobContext:
    """The job being run, passed to every task as its first argument.

    ``job_id`` is stable across tries: use it as the idempotency key of side effects, since a job
    may run more than once (at-least-once delivery). ``try_number`` counts the tries charged to the
    job (1 for the first); tries cut short by crashed or stopping workers are counted separately,
    in ``interruptions``.
    """

    job_id: str
    task: str
    try_number: int
    max_tries: int
    interruptions: int
    enqueued_at: datetime
    timeout_s: float
    queue_name: str
    redis: ArqRedis = field(repr=False)
    keep_ms: int = field(default=86_400_000, repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False)
    worker_id: str = ""  #: the worker running this try (``<host>:<pid>``)
    services: TaskServices | None = field(default=None, repr=False)
    workflow_id: str | None = None  #: the workflow this job is a step of (``None``: it is not a step)

    @property
    def is_last_try(self) -> bool:
        """Whether a failure of this try ends the job for good."""
        return self.try_number >= self.max_tries

    @property
    def attempt(self) -> int:
        """Starts of this job so far, this one included (charged tries plus interruptions)."""
        return self.try_number + self.interruptions

    def _services(self) -> TaskServices:
        if self.services is None:
            raise TaskDefinitionError(
                "this JobContext was built outside a worker: it has no settings, resources or client "
                "(build it with services=..., or run the task through a worker)"
            )
        return self.services

    @property
    def settings(self) -> JobqSettings:
        """The worker's settings."""
        return self._services().settings

    async def resource(self, wanted: Resource[T]) -> T:
        """A resource shared by this worker's jobs (an HTTP session, a pool), opened on first use."""
        return await self._services().resource(wanted)

    async def enqueue(self, task: TaskDef[Any, Any] | str, payload: Any, **options: Any) -> EnqueuedJob:
        """Enqueue another job from this one (fan-out); same options as :meth:`Client.enqueue`.

        Returns the new job's :class:`~worker.client.handle.JobHandle`.
        """
        return await self._services().enqueue(task, payload, **options)

    async def enqueue_many(self, requests: Iterable[JobRequest]) -> Sequence[EnqueuedJob]:
        """Enqueue a batch from this job in a few round trips; see :meth:`Client.enqueue_many`."""
        return await self._services().enqueue_many(requests)

    async def enqueue_workflow(
        self, workflow: Node, *, workflow_id: str | None = None, on_failure: str = "stop"
    ) -> EnqueuedWorkflow:
        """Enqueue a workflow from this job, atomically; same arguments as :meth:`Client.enqueue_workflow`.

        A job may run more than once: give a ``workflow_id`` derived from :attr:`job_id`, so that a second run is
        refused (:class:`~worker.InvalidJobOptions` naming ``workflow_id``) instead of starting the workflow twice.
        """
        return await self._services().enqueue_workflow(workflow, workflow_id=workflow_id, on_failure=on_failure)

    async def report_progress(self, fraction: float, message: str = "") -> None:
        """Publish how far the job has got (0.0 to 1.0) and what it is doing, for ``status()`` to show.

        Each call is one Redis round trip; report at a human pace (a few times a second at most).
        """
        if not (isinstance(fraction, int | float) and math.isfinite(fraction) and 0 <= fraction <= 1):
            raise ValueError(f"progress must be a number from 0 to 1, got {fraction!r}")
        meta = JobKeys(self.job_id, self.queue_name).meta
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                meta,
                mapping={
                    "progress": repr(float(fraction)),
                    "progress_message": message[:MAX_PROGRESS_MESSAGE],
                    "progress_at": round(self.clock() * 1000),
                },
            )
            pipe.pexpire(meta, self.keep_ms)
            await pipe.execute()
