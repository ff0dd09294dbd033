"""The end of a try: one method per way a try ends, and one path (:meth:`TryEnds.ended`) they all take.

Each method first marks the try as ending on its :class:`~worker.engine.try_handle.TryHandle` (its
lease is no longer renewed, its slot takes the next job), writes the outcome in one fenced script
(:mod:`worker.engine.finish`) and then hands the end to the middlewares (metrics, the try's log line,
Sentry), once:

==================  =========================================================================
SUCCEEDED           result stored, job removed
RETRYING            failure counted, next try scheduled by re-scoring the job in Redis
DEAD_LETTERED       no tries left, permanent error, or the job cannot run at all: dead letter
ABORTED             aborted on request: stored as aborted, never retried
INTERRUPTED         cut short by shutdown: back on the queue at once, not charged
WAITING             no free slot, or over a rate limit: parked until its turn; not a try
LEASE_LOST          another worker holds the lease: nothing written
==================  =========================================================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from worker.engine.finish import LeaseLost, TryRecorder
from worker.engine.limiter import NoFreeSlot
from worker.engine.middleware import MiddlewareChain
from worker.engine.try_handle import TryHandle, cancelled_outcome
from worker.engine.try_records import ExecutionConfig, TryJob, dead_letter_entry, result_body
from worker.engine.workflow_progress import WorkflowProgress
from worker.errors import JobAborted, PermanentError
from worker.policy import RandomDraw, RetryPolicy, decide
from worker.protocol.serialization import EnvelopeCodec, error_to_dict
from worker.states import Outcome
from worker.taskdef.registry import TaskDef, TaskRegistry

logger = logging.getLogger("jobq.job")


class TryEnds:
    """Records how the tries of one queue end; one instance per executor."""

    def __init__(
        self,
        registry: TaskRegistry,
        codec: EnvelopeCodec,
        config: ExecutionConfig,
        recorder: TryRecorder,
        *,
        middleware: MiddlewareChain,
        clock: Callable[[], float] = time.time,
        draw: RandomDraw,
    ) -> None:
        self.middleware = middleware
        self._registry = registry
        self._codec = codec
        self._config = config
        self._recorder = recorder
        self._clock = clock
        self._draw = draw
        self._workflows = WorkflowProgress(recorder.redis)

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    async def succeeded(self, try_: TryHandle, job: TryJob, task_def: TaskDef[Any, Any], result: bytes) -> Outcome:
        """The task returned: its result is written with the other ends of this loop iteration."""
        try_.end()
        ttl_ms = max(self.result_ttl_ms(task_def), job.keep_result_ms)
        ending = self._recorder.batcher.submit(job.keys.job_id, job.token, result, ttl_ms)
        # Not shielded: a cancellation here cancels only this future; the batch still writes the end.
        if not await ending:
            raise LeaseLost(f"finish of job {job.keys.job_id}")
        if job.workflow is not None:
            await self._workflows.succeeded(job, self._now_ms())
        return self.ended(job, Outcome.SUCCEEDED)

    async def cancelled(self, try_: TryHandle, job: TryJob) -> Outcome:
        """The try was cancelled: its handle's reason decides how it ends (the one place that does)."""
        try_.end()
        outcome = cancelled_outcome(try_.cancel_reason)
        if outcome is Outcome.ABORTED:
            return await self.abort(try_, job)
        if outcome is Outcome.LEASE_LOST:
            return self.ended(job, outcome, "the lease passed to another worker mid-try; nothing recorded")
        await self._recorder.interrupt(job.keys, job.token)
        return self.ended(job, Outcome.INTERRUPTED, "worker shutting down; back on the queue")

    def lease_lost(self, try_: TryHandle, job: TryJob, detail: str, error: BaseException) -> Outcome:
        """Another worker holds the job's lease (or Redis is away): this worker records nothing."""
        try_.end()
        return self.ended(job, Outcome.LEASE_LOST, detail, error=error)

    async def failed(self, try_: TryHandle, job: TryJob, policy: RetryPolicy, exc: Exception) -> Outcome:
        """The task raised: retried later under its policy, or dead-lettered."""
        try_.end()
        decision = decide(exc, policy, job.try_number, self._draw)
        if decision.next is Outcome.DEAD_LETTERED:
            return await self.dead_letter(try_, job, exc, failure=decision.failure, reason=decision.reason)
        delay_s = decision.delay_s or 0.0
        delay_ms = round(delay_s * 1000)
        last_error = self._codec.dumps({"e": error_to_dict(exc), "at": self._now_ms()})
        now_ms = self._now_ms()
        await self._recorder.retry(
            job.keys, job.token, now_ms + delay_ms, last_error, self.keep_ms(delay_ms), priority=(job.priority, now_ms)
        )
        detail = f"{decision.failure}: {type(exc).__name__}: {exc}; next try in {delay_s:.2f}s ({decision.reason})"
        return self.ended(job, Outcome.RETRYING, detail, failure=decision.failure, error=exc)

    async def wait(self, try_: TryHandle, job: TryJob, exc: NoFreeSlot) -> Outcome:
        """No free concurrency slot, or over a rate limit: the start is given back and the job waits, parked on
        the limit's gate, until its turn. Not a try: no middleware hook sees it (one debug line is logged)."""
        try_.end()
        now_ms = self._now_ms()
        # A rate limit knows when it admits the job: the gate is re-checked exactly then, and an idle worker
        # woken for it. Parked at its claimed score: back in its priority's band when it comes back.
        rated = exc.retry_after_ms is not None
        wait_ms = exc.retry_after_ms if exc.retry_after_ms is not None else round(self._config.slot_retry_s * 1000)
        parked = await self._recorder.park(
            job.keys, job.token, try_.claim.score, exc.gate, now_ms + wait_ms, now_ms=now_ms if rated else None
        )
        waits = "waits for a rate slot" if rated else "waits for a slot"
        logger.debug("job %s (%s) %s: %s", job.keys.job_id, job.task, waits if parked else "is back", exc.what)
        return Outcome.WAITING

    async def abort(self, try_: TryHandle, job: TryJob) -> Outcome:
        """The job's abort was requested: stored as aborted, never retried."""
        try_.end()
        error = JobAborted(f"job {job.keys.job_id} was aborted on request")
        result = self._failure_result(job, error, Outcome.ABORTED)
        await self._recorder.finish(job.keys, job.token, result, self.result_ttl_ms(None), aborted=True)
        if job.workflow is not None:
            await self._workflows.failed(job, self._now_ms())
        return self.ended(job, Outcome.ABORTED, error=error)

    async def dead_letter(
        self,
        try_: TryHandle,
        job: TryJob,
        exc: BaseException,
        *,
        failure: Outcome = Outcome.FAILED,
        reason: str = "cannot run",
    ) -> Outcome:
        """The job will never run again: moved to the dead letters with its error."""
        try_.end()
        now_ms = self._now_ms()
        error = error_to_dict(exc)
        entry = dead_letter_entry(job, self._config.queue_name, error, now_ms)
        result = self._failure_result(job, exc, Outcome.DEAD_LETTERED)
        task_def = self._registry.get(job.task) if job.task in self._registry else None
        ttl_ms = max(self.result_ttl_ms(task_def), job.keep_result_ms)
        dropped = await self._recorder.dead_letter(job.keys, job.token, result, ttl_ms, entry, now_ms)
        if job.workflow is not None:
            await self._workflows.failed(job, now_ms)
        detail = f"{failure}: {error['type']}: {error['message']} ({reason})"
        if dropped:
            detail += f"; the dead-letter store was full or old: {dropped} entries dropped"
        return self.ended(job, Outcome.DEAD_LETTERED, detail, failure=failure, error=exc)

    def ended(
        self,
        job: TryJob,
        outcome: Outcome,
        detail: str = "",
        *,
        failure: Outcome | None = None,
        error: BaseException | None = None,
    ) -> Outcome:
        """The end of a try, once recorded: its middlewares' after_try hooks (metrics and log line among them)."""
        job.failure = failure
        job.detail = detail
        self.middleware.after_try(job, outcome, error, self._clock() - job.started_ms / 1000)
        return outcome

    def result(self, job: TryJob, *, success: bool, value: Any, outcome: Outcome) -> bytes:
        """The job's result envelope; :class:`PermanentError` when a task's value cannot be stored as JSON."""
        try:
            return self._codec.dumps(result_body(job, self._config.queue_name, success, value, outcome, self._now_ms()))
        except (TypeError, ValueError) as exc:
            if not success:
                raise
            # A value JSON cannot hold is a bug in the task: no retry will fix it.
            raise PermanentError(f"the result of task {job.task!r} cannot be stored as JSON: {exc}") from None

    def _failure_result(self, job: TryJob, exc: BaseException, outcome: Outcome) -> bytes | None:
        """The result envelope of a failed job; without its arguments when they cannot be written back as
        JSON (nested too deep, numbers past 64 bits), and none when even that fails (the dead letter stays)."""
        try:
            return self.result(job, success=False, value=exc, outcome=outcome)
        except (TypeError, ValueError):
            pass
        bare = TryJob(
            job.keys, job.token, None, job.task, (), {}, 0, job.started_ms, job.try_number, job.max_tries,
            job.interruptions,
        )  # fmt: skip
        try:
            return self.result(bare, success=False, value=exc, outcome=outcome)
        except (TypeError, ValueError):
            return None

    def result_ttl_ms(self, task_def: TaskDef[Any, Any] | None) -> int:
        """How long the result of a job of ``task_def`` is kept (ms)."""
        ttl_s = task_def.result_ttl_s if task_def is not None and task_def.result_ttl_s is not None else None
        return round((self._config.result_ttl_s if ttl_s is None else ttl_s) * 1000)

    def keep_ms(self, delay_ms: int) -> int:
        """How long a job's records are kept when its next try is ``delay_ms`` away."""
        return delay_ms + round(self._config.job_expires_s * 1000)
