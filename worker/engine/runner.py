"""Run one worker process until it is told to stop (or, in burst mode, until the queue is empty)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

from worker.engine.assembly import build_lanes, build_worker
from worker.engine.group import WorkerGroup
from worker.engine.redis_guard import check_redis_safety
from worker.process.eventloop import STOP_SIGNALS
from worker.protocol.connection import close_redis, create_redis, wait_for_redis
from worker.protocol.permissions import check_permissions, permission_error, redis_user
from worker.settings import JobqSettings
from worker.taskdef.registry import TaskRegistry

logger = logging.getLogger("jobq.worker")


async def run_worker(settings: JobqSettings, *, registry: TaskRegistry | None = None, burst: bool = False) -> None:
    """Load the tasks, connect, and process jobs; returns after SIGTERM/SIGINT or a finished burst.

    With several queues (``JOBQ_QUEUES``) the process runs one worker per queue (:mod:`worker.engine.group`).
    """
    with stop_during_start_up() as stopped:
        group = await _start(settings, registry, burst)
    if group is None:
        logger.info("worker stopping on %s during start-up, before taking any job", stopped[0].name)
        return
    try:
        await group.run()
    except asyncio.CancelledError:
        # A stop signal makes the loop return by itself (worker.engine.stopping drains and gives jobs back);
        # this is a cancellation from outside (an embedding program): close() below gives back what runs.
        logger.info("worker cancelled")
    finally:
        await group.close()
    logger.info("worker stopped: %d complete, %d failed, %d retried", *group.tallies())


async def _start(settings: JobqSettings, registry: TaskRegistry | None, burst: bool) -> WorkerGroup | None:
    """The worker (one lane per queue), connected and checked; ``None`` when a stop signal came first."""
    try:
        registry = registry if registry is not None else TaskRegistry.from_modules(settings.task_modules)
        redis = create_redis(settings)
        await asyncio.sleep(0)  # a signal that came while the task modules were imported
    except asyncio.CancelledError:
        return None
    queues, checking = settings.queue_plan.queues, settings.queue_name
    try:
        await wait_for_redis(redis)
        await check_redis_safety(redis, settings.redis_safety_check)
        # A user that may not do what a worker needs exits 2 here, naming it, instead of failing every claim.
        for queue in queues:
            checking = queue
            await check_permissions(redis, queue, redis_user(settings))
    except asyncio.CancelledError:
        await close_redis(redis)
        return None
    except BaseException as exc:
        await close_redis(redis)
        refused = permission_error(exc, user=redis_user(settings), queue=checking)
        if refused is not None:
            raise refused from exc
        raise
    if len(queues) == 1:
        # The worker's own handlers (installed as it is built) take over from stop_during_start_up's.
        return WorkerGroup.of_one(build_worker(settings, registry, redis, burst=burst))
    group = WorkerGroup(build_lanes(settings, registry, redis, burst=burst), cancel_grace_s=settings.cancel_grace_s)
    group.install_signal_handlers()
    logger.info(
        "serving queues %s (%s)", settings.queue_plan, "strict order" if settings.queue_plan.strict else "by weight"
    )
    return group


@contextlib.contextmanager
def stop_during_start_up() -> Iterator[list[signal.Signals]]:
    """Until the worker's handlers are installed, SIGTERM/SIGINT cancel the start-up (the list gets the signal).

    Without it SIGTERM killed the process outright and SIGINT raised KeyboardInterrupt wherever it landed.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        if not received and task is not None:
            task.cancel()
        received.append(signum)

    for signum in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, ValueError, RuntimeError):  # not the main thread, Windows
            loop.add_signal_handler(signum, stop, signum)
    yield received
