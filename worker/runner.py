"""Run one worker process until it is told to stop (or, in burst mode, until the queue is empty)."""

from __future__ import annotations

import asyncio
import logging

from .assembly import build_worker
from .connection import close_redis, create_redis, wait_for_redis
from .permissions import check_permissions, permission_error, redis_user
from .redis_guard import check_redis_safety
from .registry import Registry
from .settings import JobqSettings

logger = logging.getLogger("jobq.worker")


async def run_worker(settings: JobqSettings, *, registry: Registry | None = None, burst: bool = False) -> None:
    """Load the tasks, connect, and process jobs; returns after SIGTERM/SIGINT or a finished burst."""
    registry = registry if registry is not None else Registry.from_modules(settings.task_modules)
    redis = create_redis(settings)
    try:
        await wait_for_redis(redis)
        await check_redis_safety(redis, settings.redis_safety_check)
        # A user that may not do what a worker needs exits 2 here, naming it, instead of failing every claim.
        await check_permissions(redis, settings.queue_name, redis_user(settings))
    except BaseException as exc:
        await close_redis(redis)
        refused = permission_error(exc, user=redis_user(settings), queue=settings.queue_name)
        if refused is not None:
            raise refused from exc
        raise
    worker = build_worker(settings, registry, redis, burst=burst)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        # arq's signal handler cancels the main task; running jobs were cancelled and re-queued.
        logger.info("worker stopping on signal")
    finally:
        await worker.close()
    logger.info(
        "worker stopped: %d complete, %d failed, %d retried",
        worker.jobs_complete,
        worker.jobs_failed,
        worker.jobs_retried,
    )
