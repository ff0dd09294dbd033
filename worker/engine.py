"""The arq ``Worker`` subclass jobq runs, and the factory that builds it from the settings.

arq is pinned exactly; every override lives here with a one-line reason, so an arq upgrade has one
file to re-check.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from arq import utils as arq_utils
from arq.connections import ArqRedis
from arq.utils import poll
from arq.worker import Function, Worker, func
from redis.exceptions import RedisError

from .attempt import AttemptRunner
from .connection import close_redis, codec_for
from .execution import ExecutionConfig, JobExecutor
from .finish import DeadLetterBounds, TryRecorder
from .keys import JobKeys
from .limits import DistributedLimiter
from .options import timeout_limit_s
from .policy import RandomDraw, import_error_types
from .registry import Registry
from .settings import JobqSettings
from .states import TERMINAL_OUTCOMES, Outcome

if TYPE_CHECKING:
    from arq.typing import WorkerCoroutine

logger = logging.getLogger("jobq.worker")

#: Added to a task's timeout for arq's in-progress TTL: room for the cancel grace and the finish.
BACKSTOP_MARGIN_S = 5.0


class JobqWorker(Worker):
    """arq's worker with the overrides jobq needs: arq claims jobs, jobq's executor runs them."""

    def __init__(self, *, executor: JobExecutor, abort_check_s: float, **arq_kwargs: Any) -> None:
        super().__init__(**arq_kwargs)
        self.executor = executor
        self.abort_check_s = abort_check_s
        self._aborting: set[str] = set()
        self._last_abort_check = 0.0

    async def run_job(self, job_id: str, score: int) -> None:
        # Override: jobq runs the job itself (outcome classification, dead letters, abort, uncharged interruptions).
        try:
            outcome = await self.executor.run(job_id, aborting=self._aborting)
        except asyncio.CancelledError:
            if job_id not in self._aborting:
                raise  # the worker is stopping
            # The abort landed while the try's outcome was being recorded (shielded, so it completes):
            # the job ended on its own. arq's poll loop must not see a cancelled task and stop.
            return
        finally:
            self._aborting.discard(job_id)
        if outcome is Outcome.SUCCEEDED:
            self.jobs_complete += 1
        elif outcome in TERMINAL_OUTCOMES:
            self.jobs_failed += 1
        else:
            self.jobs_retried += 1

    async def check_aborts(self) -> list[str]:
        """Cancel the running jobs whose abort was requested; return their ids."""
        running = [job_id for job_id, t in self.tasks.items() if not t.done() and job_id not in self._aborting]
        if not running:
            return []
        flags = await self.pool.mget([JobKeys(job_id, self.queue_name).abort for job_id in running])
        hits = [job_id for job_id, flag in zip(running, flags, strict=True) if flag]
        for job_id in hits:
            self._aborting.add(job_id)
            self.tasks[job_id].cancel()
        return hits

    async def _maybe_check_aborts(self) -> None:
        now = time.monotonic()
        if now - self._last_abort_check >= self.abort_check_s:
            self._last_abort_check = now
            await self.check_aborts()

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
            await self._maybe_check_aborts()
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
    """arq's view of the tasks: names and timeouts, which size the in-progress key's TTL.

    jobq's ``run_job`` calls the tasks itself; arq never calls these coroutines.
    """
    return [
        func(
            cast("WorkerCoroutine", task_def.fn),
            name=task_def.name,
            timeout=timeout_limit_s(task_def, settings.job_timeout_s) + BACKSTOP_MARGIN_S,
        )
        for task_def in registry
    ]


def execution_config(settings: JobqSettings) -> ExecutionConfig:
    """The executor's settings; resolves ``JOBQ_GIVE_UP_ON`` to exception classes."""
    give_up = import_error_types(settings.give_up_on, "JOBQ_GIVE_UP_ON")
    return ExecutionConfig(
        queue_name=settings.queue_name,
        job_timeout_s=settings.job_timeout_s,
        retry=settings.retry_policy.giving_up_on(give_up),
        result_ttl_s=settings.result_ttl_s,
        job_expires_s=settings.job_expires_s,
        max_interruptions=settings.max_interruptions,
        slot_retry_s=settings.slot_retry_s,
    )


def build_worker(
    settings: JobqSettings,
    registry: Registry,
    redis: ArqRedis,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    clock: Callable[[], float] = time.time,
    draw: RandomDraw = random.random,
) -> JobqWorker:
    """A :class:`JobqWorker` for ``registry`` on ``redis``; call it inside the running event loop."""
    codec = codec_for(settings)
    bounds = DeadLetterBounds(
        max_entries=settings.dead_letter_max_entries, retention_ms=round(settings.dead_letter_retention_s * 1000)
    )
    executor = JobExecutor(
        registry,
        codec,
        execution_config(settings),
        recorder=TryRecorder(redis, settings.queue_name, bounds),
        attempts=AttemptRunner(
            registry, DistributedLimiter(redis, settings.limit_lease_s), cancel_grace_s=settings.cancel_grace_s
        ),
        clock=clock,
        draw=draw,
    )
    return JobqWorker(
        executor=executor,
        abort_check_s=settings.abort_check_s,
        functions=arq_functions(registry, settings),
        queue_name=settings.queue_name,
        redis_pool=redis,
        burst=burst,
        handle_signals=handle_signals,
        max_jobs=settings.max_jobs,
        job_timeout=settings.job_timeout_s + BACKSTOP_MARGIN_S,
        poll_delay=settings.poll_delay_s,
        job_serializer=codec.dumps,
        job_deserializer=codec.loads,
        expires_extra_ms=int(settings.job_expires_s * 1000),
    )
