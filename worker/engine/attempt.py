"""One try of a task: its concurrency slots and rate-limit admission (taken before the try begins) and its
timeout.

The task runs in a task of its own so that the timeout holds even when the task swallows its
cancellation: after ``timeout_s`` it is cancelled; if it has not stopped ``cancel_grace_s`` later,
the try is recorded as timed out anyway and the coroutine is abandoned (it keeps running in the
background until it returns on its own, and an error is logged naming the job). A task that
swallows the cancellation and returns late still counts as timed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from worker.engine.claim_limits import ClaimLimits
from worker.engine.limiter import DistributedLimiter, Gate, NoFreeSlot
from worker.engine.local_slots import LocalSlots
from worker.errors import JobTimeout
from worker.taskdef.context import JobContext
from worker.taskdef.registry import TaskDef, TaskRegistry

logger = logging.getLogger("jobq.attempt")


class AttemptRunner:
    """Runs tries of the tasks of one registry in one worker process."""

    def __init__(self, registry: TaskRegistry, limiter: DistributedLimiter, *, cancel_grace_s: float = 1.0) -> None:
        self._limiter = limiter
        self._cancel_grace_s = cancel_grace_s
        #: The tasks' per-worker concurrency slots, which the lane's claims also read (see worker.engine.local_slots).
        self.local = LocalSlots(registry)
        #: What the lane's claims hold back for this runner (see worker.engine.claim_limits).
        self.claim_limits = ClaimLimits(registry, self.local, limiter)
        self.abandoned: set[asyncio.Future[Any]] = set()

    async def take_slots(
        self, task_def: TaskDef[Any, Any], payload: Any, holder: str, queue: str, rate_wait_ms: int | None = None
    ) -> contextlib.AsyncExitStack:
        """Take the task's concurrency slots (per worker, then fleet-wide), then its rate limit's admission, for one
        try, or raise :class:`NoFreeSlot` holding none; closing the stack gives the slots back.

        ``rate_wait_ms``: the claim admitted the start under the rate limit already, for this wait (ms)."""
        stack = contextlib.AsyncExitStack()
        if self.local.limits(task_def.name):
            if not self.local.try_take(task_def.name):
                raise NoFreeSlot(
                    f"task {task_def.name!r} already runs {task_def.concurrency} jobs in this worker",
                    Gate.local(task_def.name),
                )
            stack.callback(self.local.give_back, task_def.name)  # the lane's next claim puts a waiting job back
        try:
            if task_def.limit is not None:
                await stack.enter_async_context(self._limiter.slot(task_def.limit, payload, holder, queue))
            if task_def.rate_limit is not None:  # last: a start over the rate gives its concurrency slots back
                if rate_wait_ms is None:
                    await self._limiter.admit(task_def.rate_limit, payload, queue)
                elif rate_wait_ms > 0:
                    await self._limiter.hold(rate_wait_ms)  # a turn the claim reserved
        except BaseException:
            await stack.aclose()
            raise
        return stack

    def parked(self, gate: Gate) -> None:
        """A job was parked on ``gate``: if a per-worker slot freed while it was parked (and so woke nobody), the
        lane's next claim puts one waiting job back. (A fleet limit's park script checks its slots itself.)"""
        if gate.task is not None and self.local.has_free(gate.task):
            self.local.owe(gate.task)

    async def put_back_owed(self, queue: str) -> None:
        """Put back now the waiting jobs the lane's freed slots owe (a lane that will not claim soon: full, or
        stopping), so other workers can run them."""
        for task, n in self.local.take_owed().items():
            await self._limiter.unpark(queue, Gate.local(task), n)

    async def run(self, task_def: TaskDef[Any, Any], ctx: JobContext, payload: Any) -> Any:
        """Run one try under the task's timeout (its slots taken already: :meth:`take_slots`)."""
        return await self._with_timeout(task_def, ctx, payload)

    async def _with_timeout(self, task_def: TaskDef[Any, Any], ctx: JobContext, payload: Any) -> Any:
        running = asyncio.ensure_future(task_def.fn(ctx, payload))
        try:
            await _wait_at_most(running, ctx.timeout_s)
        except asyncio.CancelledError:  # aborted, or the worker is shutting down
            await self._stop(running, ctx)
            raise
        if not running.done():
            await self._stop(running, ctx)
            raise JobTimeout(task_def.name, ctx.job_id, ctx.timeout_s)
        return running.result()

    async def _stop(self, running: asyncio.Future[Any], ctx: JobContext) -> None:
        running.cancel()
        done, _ = await asyncio.wait({running}, timeout=self._cancel_grace_s)
        if running in done:
            if not running.cancelled():
                running.exception()  # retrieved: the try's outcome is decided by the caller
            return
        logger.error(
            "job %s (%s) ignored its cancellation for %.1fs and is abandoned; it may still have effects",
            ctx.job_id,
            ctx.task,
            self._cancel_grace_s,
        )
        self.abandoned.add(running)
        running.add_done_callback(self.abandoned.discard)


async def _wait_at_most(running: asyncio.Future[Any], timeout_s: float) -> None:
    """Wait until ``running`` is done or ``timeout_s`` has passed (``asyncio.wait`` for one future, leaner)."""
    if running.done():
        return
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(timeout_s, wake)
    running.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        running.remove_done_callback(wake)
