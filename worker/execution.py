"""Policies applied to one job: payload validation, concurrency slot, timeout and retry decision.

:func:`job_coroutine` turns a :class:`~worker.registry.TaskDef` into the coroutine arq runs for each
job. arq stays in charge of claiming, storing results and deferring retries in Redis; this module
decides what one try means:

* an invalid payload fails the job at once (retrying cannot fix it);
* no free per-task slot defers the job briefly without charging a try and without holding a
  worker slot while waiting;
* the try runs under ``asyncio.timeout``; running past it is :class:`~worker.errors.JobTimeout`,
  also when the task swallowed the cancellation and returned late;
* any other failure is retried after a backoff delay (scheduled in Redis by deferring the job,
  never by sleeping) until the task's ``max_tries`` is used up, then stored as the job's failure.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from arq.constants import retry_key_prefix
from arq.worker import Retry

from .context import JobContext
from .errors import InvalidPayload, JobTimeout
from .observability import report_job_failure
from .policy import RandomDraw, RetryPolicy, backoff_delay_s, resolve_timeout_s, should_retry
from .registry import TaskDef

logger = logging.getLogger("jobq.execution")

#: Reserved keyword argument in arq's job dict that carries jobq's per-job options.
OPTIONS_KWARG = "_jobq"
#: Upper bound of the short deferral when a task's concurrency slots are all taken.
SLOT_WAIT_MAX_S = 0.5

ArqCoroutine = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ExecutionDefaults:
    """Settings-level defaults that a task's own policy may override."""

    job_timeout_s: float
    retry: RetryPolicy


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options set at enqueue, carried in the reserved ``_jobq`` keyword argument."""

    timeout_s: float | None = None

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> JobOptions:
        """Remove and parse the reserved options argument; unknown or malformed options are ignored."""
        raw = kwargs.pop(OPTIONS_KWARG, None)
        if not isinstance(raw, dict):
            return cls()
        timeout = raw.get("timeout_s")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
            return cls(timeout_s=float(timeout))
        return cls()

    def to_kwargs(self) -> dict[str, Any]:
        """The keyword arguments that carry these options ({} when there are none)."""
        return {OPTIONS_KWARG: {"timeout_s": self.timeout_s}} if self.timeout_s is not None else {}


def timeout_limit_s(task_def: TaskDef[Any, Any], default_s: float) -> float:
    """The longest timeout a job of this task may ask for: the task's own (or the default)."""
    return resolve_timeout_s(None, task_def.timeout_s, default_s)


def job_coroutine(
    task_def: TaskDef[Any, Any],
    defaults: ExecutionDefaults,
    *,
    draw: RandomDraw = random.random,
) -> ArqCoroutine:
    """The coroutine function arq calls for each job of ``task_def`` (one per worker)."""
    retry_policy = task_def.retry_policy(defaults.retry)
    limit_s = timeout_limit_s(task_def, defaults.job_timeout_s)
    slots = asyncio.Semaphore(task_def.concurrency) if task_def.concurrency else None

    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        options = JobOptions.pop_from(kwargs)
        job_ctx = JobContext(
            job_id=ctx["job_id"],
            task=task_def.name,
            try_number=ctx["job_try"],
            max_tries=retry_policy.max_tries,
            enqueued_at=ctx.get("enqueue_time") or datetime.now(UTC),
            timeout_s=min(resolve_timeout_s(options.timeout_s, None, limit_s), limit_s),
            queue_name=ctx.get("queue_name", ""),
            redis=ctx["redis"],
        )
        try:
            payload = task_def.payload_from_call(args, kwargs)
            if slots is None:
                result = await _run_with_timeout(task_def, job_ctx, payload)
            elif slots.locked():
                await _defer_without_charge(job_ctx, draw)
            else:
                async with slots:
                    result = await _run_with_timeout(task_def, job_ctx, payload)
        except Retry:
            raise
        except Exception as exc:
            _retry_or_give_up(exc, job_ctx, retry_policy, draw, args or kwargs)
            raise
        return task_def.dump_result(result)

    run.__qualname__ = run.__name__ = f"jobq_task_{task_def.name}"
    return run


def _retry_or_give_up(exc: Exception, ctx: JobContext, policy: RetryPolicy, draw: RandomDraw, raw: Any) -> None:
    """Raise arq's ``Retry`` (deferring the job in Redis) if another try is allowed; else report the failure."""
    if should_retry(policy, ctx.try_number) and not isinstance(exc, InvalidPayload):
        delay_s = backoff_delay_s(policy, ctx.try_number, draw)
        logger.info(
            "job %s (%s) try %d of %d failed with %s: %s; retrying in %.2fs",
            ctx.job_id,
            ctx.task,
            ctx.try_number,
            policy.max_tries,
            type(exc).__name__,
            exc,
            delay_s,
        )
        raise Retry(defer=delay_s) from exc
    report_job_failure(exc, ctx, payload=raw)


async def _run_with_timeout(task_def: TaskDef[Any, Any], ctx: JobContext, payload: Any) -> Any:
    timeout_s = ctx.timeout_s
    try:
        async with asyncio.timeout(timeout_s) as scope:
            result = await task_def.fn(ctx, payload)
    except TimeoutError:
        if scope.expired():
            raise JobTimeout(task_def.name, ctx.job_id, timeout_s) from None
        raise
    if scope.expired():
        # The task swallowed the cancellation and returned late: the try still ran past its limit.
        raise JobTimeout(task_def.name, ctx.job_id, timeout_s)
    return result


async def _defer_without_charge(ctx: JobContext, draw: RandomDraw) -> NoReturn:
    """Give the job back for a short while; waiting for a slot is not a try."""
    await ctx.redis.decr(retry_key_prefix + ctx.job_id)
    raise Retry(defer=SLOT_WAIT_MAX_S * (0.5 + draw() / 2))
