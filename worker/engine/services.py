"""What a worker shares with all its jobs at run time: the resources it opened, a producer client, the settings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from worker.client.handle import JobHandle
from worker.client.producer import Client
from worker.client.workflow_status import WorkflowHandle
from worker.settings import JobqSettings
from worker.taskdef.registry import TaskDef
from worker.taskdef.requests import JobRequest
from worker.taskdef.services import Resource
from worker.taskdef.workflow import Node

T = TypeVar("T")


class Resources:
    """The resources one worker has opened; each is opened once, even when many jobs ask at once."""

    def __init__(self, settings: JobqSettings) -> None:
        self._settings = settings
        self._values: dict[Resource[Any], Any] = {}
        self._lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()

    async def get(self, wanted: Resource[T]) -> T:
        """The value of ``wanted``, opening it on first use."""
        if wanted in self._values:
            return cast(T, self._values[wanted])
        async with self._lock:
            if wanted not in self._values:
                self._values[wanted] = await self._stack.enter_async_context(wanted.factory(self._settings))
            return cast(T, self._values[wanted])

    async def open_all(self, declared: Iterable[Resource[Any]]) -> None:
        """Open every resource of ``declared`` now (a worker's start-up), not when a job first asks."""
        for wanted in declared:
            await self.get(wanted)

    def is_open(self, wanted: Resource[Any]) -> bool:
        """Whether ``wanted`` has been opened (and not closed since)."""
        return wanted in self._values

    async def close(self) -> None:
        """Close every opened resource, last opened first."""
        self._values.clear()
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()


@dataclass(frozen=True, eq=False)
class WorkerServices:
    """Handed to every job through its context: settings, a client for enqueueing, resources.

    The engine's implementation of :class:`~worker.taskdef.context.TaskServices`.
    """

    settings: JobqSettings
    client: Client
    resources: Resources

    async def resource(self, wanted: Resource[T]) -> T:
        """The value of ``wanted``, opened on first use by any job of this worker."""
        return await self.resources.get(wanted)

    async def enqueue(self, task: TaskDef[Any, Any] | str, payload: Any, **options: Any) -> JobHandle[Any]:
        """Enqueue another job (see :meth:`Client.enqueue`)."""
        return await self.client.enqueue(task, payload, **options)

    async def enqueue_many(self, requests: Iterable[JobRequest]) -> list[JobHandle[Any]]:
        """Enqueue a batch (see :meth:`Client.enqueue_many`)."""
        return await self.client.enqueue_many(requests)

    async def enqueue_workflow(
        self, workflow: Node, *, workflow_id: str | None = None, on_failure: str = "stop"
    ) -> WorkflowHandle:
        """Enqueue a workflow, atomically (see :meth:`Client.enqueue_workflow`)."""
        return await self.client.enqueue_workflow(workflow, workflow_id=workflow_id, on_failure=on_failure)
