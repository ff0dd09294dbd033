"""The arq ``Worker`` subclass jobq runs, and the factory that builds it from the settings.

arq is pinned exactly; every override lives here with a one-line reason, so an arq upgrade has one
file to re-check.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, cast

from arq import utils as arq_utils
from arq.connections import ArqRedis
from arq.utils import poll
from arq.worker import Function, Worker, func
from redis.exceptions import RedisError

from .connection import close_redis, codec_for
from .execution import ExecutionDefaults, job_coroutine, timeout_limit_s
from .registry import Registry
from .settings import JobqSettings

if TYPE_CHECKING:
    from arq.typing import WorkerCoroutine

logger = logging.getLogger("jobq.worker")

#: arq's own ``wait_for`` is only a backstop behind jobq's ``asyncio.timeout``; it fires this much later.
BACKSTOP_MARGIN_S = 5.0


class JobqWorker(Worker):
    """arq's worker with the overrides jobq needs."""

    async def main(self) -> None:
        # Override: arq's main() ends the worker when INFO fails (fakeredis, restricted ACL users).
        if self._pool is None:
            raise RuntimeError("JobqWorker needs a redis_pool; build it with build_worker()")
        logger.info("starting worker for %d tasks: %s", len(self.functions), ", ".join(sorted(self.functions)))
        await self._log_redis_info()
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        async for _ in poll(self.poll_delay_s):
            await self._poll_iteration()
            if self.burst and await self._burst_done():
                return

    async def run_due_jobs(self) -> int:
        """Claim every job due now, run them to their end, and return how many were started.

        The one-step seam for tests and tools: no polling loop, no signals.
        """
        self.ctx["redis"] = self.pool
        running_before = set(self.tasks)
        due = await self.pool.zrangebyscore(
            self.queue_name, min=float("-inf"), max=arq_utils.timestamp_ms(), start=0, num=self.queue_read_limit
        )
        await self.start_jobs(due)
        started = len(set(self.tasks) - running_before)
        await asyncio.gather(*self.tasks.values())
        for job_id, finished in list(self.tasks.items()):
            del self.tasks[job_id]
            finished.result()  # surfaces errors escaping run_job, as arq's poll loop does
        return started

    async def _burst_done(self) -> bool:
        if 0 <= self.max_burst_jobs <= self._jobs_started() or await self.pool.zcard(self.queue_name) == 0:
            await asyncio.gather(*self.tasks.values())
            return True
        return False

    async def _log_redis_info(self) -> None:
        try:
            info = await self.pool.info(section="server")
        except RedisError as exc:
            logger.info("redis server info unavailable (%s)", exc)
            return
        logger.info("redis %s on queue %r", info.get("redis_version", "?"), self.queue_name)

    async def close(self) -> None:
        # Override: arq calls the deprecated Redis.close(), does not close sentinel connections, and
        # lets one failed job task abort the shutdown; the steps are otherwise arq's.
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        try:
            await self.pool.delete(self.health_check_key)
        except RedisError as exc:
            logger.warning("could not remove health key on shutdown: %s", exc)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await close_redis(self.pool)
        self._pool = None


def arq_functions(registry: Registry, settings: JobqSettings) -> list[Function]:
    """One arq ``Function`` per task, each wrapped by jobq's execution policies."""
    defaults = ExecutionDefaults(job_timeout_s=settings.job_timeout_s, retry=settings.retry_policy)
    functions = []
    for task_def in registry:
        functions.append(
            func(
                cast("WorkerCoroutine", job_coroutine(task_def, defaults)),
                name=task_def.name,
                timeout=timeout_limit_s(task_def, settings.job_timeout_s) + BACKSTOP_MARGIN_S,
                keep_result=task_def.result_ttl_s,
                # jobq decides retries itself; arq's count only stops jobs that crash workers forever.
                max_tries=task_def.retry_policy(settings.retry_policy).max_tries,
            )
        )
    return functions


def build_worker(
    settings: JobqSettings,
    registry: Registry,
    redis: ArqRedis,
    *,
    burst: bool = False,
    handle_signals: bool = True,
) -> JobqWorker:
    """A :class:`JobqWorker` for ``registry`` on ``redis``; call it inside the running event loop."""
    codec = codec_for(settings)
    return JobqWorker(
        functions=arq_functions(registry, settings),
        queue_name=settings.queue_name,
        redis_pool=redis,
        burst=burst,
        handle_signals=handle_signals,
        max_jobs=settings.max_jobs,
        job_timeout=settings.job_timeout_s + BACKSTOP_MARGIN_S,
        keep_result=settings.result_ttl_s,
        max_tries=settings.max_tries,
        poll_delay=settings.poll_delay_s,
        job_serializer=codec.dumps,
        job_deserializer=codec.loads,
        expires_extra_ms=int(settings.job_expires_s * 1000),
        ctx={"queue_name": settings.queue_name},
        # Results are data, possibly personal: never write them into logs.
        log_results=False,
    )
