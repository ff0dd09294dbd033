"""One job, start to end: load it, run one try under the task's policies, record what happened.

:class:`JobExecutor` is the seam between arq's claim loop and jobq's policies. For each claimed job
it counts the start, decodes the envelope, checks for an abort request and for a job that keeps
crashing its workers, runs the try (:mod:`worker.engine.attempt`), classifies the outcome
(:func:`worker.policy.decide`) and records it in one atomic step (:mod:`worker.engine.finish`):

==================  =========================================================================
SUCCEEDED           result stored, job removed
RETRYING            failure counted, next try scheduled by re-scoring the job in Redis
DEAD_LETTERED       no tries left, permanent error, or the job cannot run at all: dead letter
ABORTED             aborted on request: stored as aborted, never retried
INTERRUPTED         cut short by shutdown: back on the queue at once, not charged
DEFERRED            no free concurrency slot: back on the queue shortly, not charged
==================  =========================================================================
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Container
from datetime import UTC, datetime
from typing import Any

from worker.engine.attempt import AttemptRunner
from worker.engine.finish import LeaseLost, StartedTry, TryRecorder
from worker.engine.limiter import NoFreeSlot
from worker.engine.middleware import MiddlewareChain
from worker.engine.services import WorkerServices
from worker.engine.try_job import (
    ExecutionConfig,
    TryJob,
    bare_job,
    dead_letter_entry,
    decoded_job,
    refusal,
    result_body,
)
from worker.errors import JobAborted, JobQuarantined, PermanentError, SerializationError, UnknownTaskError
from worker.observability.logs import log_try
from worker.observability.metrics import Metrics
from worker.policy import RandomDraw, RetryPolicy, decide
from worker.protocol.keys import JobKeys
from worker.protocol.options import JobOptions
from worker.protocol.redis_retry import TRANSIENT
from worker.protocol.serialization import EnvelopeCodec, error_to_dict
from worker.states import Outcome
from worker.taskdef.context import JobContext
from worker.taskdef.registry import TaskDef, TaskRegistry, timeout_limit_s

logger = logging.getLogger("jobq.execution")


class JobExecutor:
    """Runs claimed jobs of one queue; one instance per worker process."""

    def __init__(
        self,
        registry: TaskRegistry,
        codec: EnvelopeCodec,
        config: ExecutionConfig,
        *,
        recorder: TryRecorder,
        attempts: AttemptRunner,
        clock: Callable[[], float] = time.time,
        draw: RandomDraw = random.random,
        services: WorkerServices | None = None,
        metrics: Metrics | None = None,
        middleware: MiddlewareChain | None = None,
    ) -> None:
        self.services = services
        self.metrics = metrics  # the worker's gauges; tries are counted by its middleware (worker.observability)
        #: The hooks around each try (metrics, try logs and Sentry among them: see build_worker).
        self.middleware = middleware if middleware is not None else MiddlewareChain()
        self._registry = registry
        self._codec = codec
        self._config = config
        self._recorder = recorder
        self._attempts = attempts
        self._clock = clock
        self._draw = draw
        self._policies: dict[str, RetryPolicy] = {}  # per task: its policy over the settings' default
        #: Called with the job id once a try's own work is over and only the writing of its end remains.
        self.on_work_done: Callable[[str], None] | None = None

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    async def run(
        self,
        job_id: str,
        token: str,
        *,
        due_ms: int | None = None,
        aborting: Container[str] = (),
        started: StartedTry | None = None,
    ) -> Outcome:
        """Run one try of ``job_id``, claimed by this worker under the lease ``token``; return its outcome.

        ``due_ms`` is when the job became due (its score when claimed), for the pickup-latency metric.
        ``started`` is the start of the try when the claim already counted it (see :mod:`worker.engine.leases`);
        without it, the start is counted here.
        """
        keys = self._recorder.keys(job_id)
        if started is None:
            try:
                started = await self._recorder.start(keys, token)
            except asyncio.CancelledError:
                await asyncio.shield(self._recorder.interrupt(keys, token))
                return Outcome.INTERRUPTED
            except LeaseLost as lost:
                log_try(job_id, "?", 0, 0, Outcome.LEASE_LOST, 0.0, f"{lost}: another worker holds the job now")
                return Outcome.LEASE_LOST
        return await self._run_started(keys, token, started, aborting, due_ms)

    async def flush(self) -> None:
        """Wait until every outcome handed to the recorder has been written."""
        await self._recorder.batcher.wait_idle()

    async def give_back(self, job_id: str, token: str) -> None:
        """Release a claimed job that this worker will not run after all (uncharged)."""
        await self._recorder.give_back(self._recorder.keys(job_id), token)

    async def _run_started(
        self,
        keys: JobKeys,
        token: str,
        started: StartedTry,
        aborting: Container[str],
        due_ms: int | None,
    ) -> Outcome:
        job = bare_job(keys, token, started, self._now_ms())
        try:
            refused = refusal(keys, started, self._config.max_envelope_bytes)
            if refused is not None:
                return await self._dead_letter(job, refused)
            # The job is built once, from its body; a job that cannot be decoded keeps the bare one (task "?").
            try:
                envelope: bytes = started.envelope  # type: ignore[assignment]  # refusal() saw it is there
                body = self._codec.loads_job(envelope, job_id=keys.job_id, queue=keys.queue)
                task_name = body["f"]
                decoded = decoded_job(keys, token, started, job.started_ms, body)
            except Exception as exc:  # whatever the decoder trips on, the job cannot run
                detail = str(exc) if isinstance(exc, SerializationError) else f"{type(exc).__name__}: {exc}"
                return await self._dead_letter(job, SerializationError(f"unable to decode job: {detail}"))
            job = decoded
            try:
                task_def = self._registry.get(task_name)
            except UnknownTaskError as exc:
                return await self._dead_letter(job, exc)
            policy = self._policies.get(task_def.name)
            if policy is None:
                policy = self._policies[task_def.name] = task_def.retry_policy(self._config.retry)
            job.max_tries = policy.max_tries
            if started.abort_requested or keys.job_id in aborting:
                return await self._abort(job)
            if job.interruptions > self._config.max_interruptions:
                return await self._dead_letter(
                    job,
                    JobQuarantined(
                        f"job {keys.job_id} was interrupted {job.interruptions} times by worker crashes or "
                        f"shutdowns (JOBQ_MAX_INTERRUPTIONS={self._config.max_interruptions}); quarantined"
                    ),
                )
            job.due_ms = due_ms
            self.middleware.before_try(job)
            return await self._attempt(job, task_def, policy, aborting)
        except LeaseLost as lost:
            return self._logged(job, Outcome.LEASE_LOST, f"{lost}: another worker holds the job now", error=lost)
        except TRANSIENT as exc:
            # Redis is away: the lease decides who runs the job next; this worker recorded nothing.
            self._logged(job, Outcome.LEASE_LOST, f"{type(exc).__name__}: {exc}: Redis is unreachable", error=exc)
            raise
        except Exception as exc:
            # A job this worker cannot handle (a bug, a record it cannot write): dead-lettered now, never
            # left to come back at every lease.
            logger.exception("job %s could not be handled; dead-lettering it", keys.job_id)
            return await self._dead_letter(job, exc, reason="the worker could not handle it")

    async def _attempt(
        self, job: TryJob, task_def: TaskDef[Any, Any], policy: RetryPolicy, aborting: Container[str]
    ) -> Outcome:
        kwargs = dict(job.kwargs)
        options = JobOptions.pop_from(kwargs)
        limit_s = timeout_limit_s(task_def, self._config.job_timeout_s)
        ctx = JobContext(
            job_id=job.keys.job_id,
            task=task_def.name,
            try_number=job.try_number,
            max_tries=job.max_tries,
            interruptions=job.interruptions,
            enqueued_at=datetime.fromtimestamp(job.enqueued_ms / 1000, tz=UTC),
            timeout_s=options.timeout_s or limit_s,
            queue_name=self._config.queue_name,
            redis=self._recorder.redis,
            keep_ms=self._keep_ms(0),
            clock=self._clock,
            worker_id=self._config.worker_id,
            services=self.services,
        )
        return await self._run_try(job, task_def, policy, ctx, kwargs, aborting)

    async def _run_try(
        self,
        job: TryJob,
        task_def: TaskDef[Any, Any],
        policy: RetryPolicy,
        ctx: JobContext,
        kwargs: dict[str, Any],
        aborting: Container[str],
    ) -> Outcome:
        try:
            payload = task_def.payload_from_call(job.args, kwargs)
            value = await self._attempts.run(task_def, ctx, payload)
            result = self._result(job, success=True, value=task_def.dump_result(value), outcome=Outcome.SUCCEEDED)
        except asyncio.CancelledError:
            if job.keys.job_id in aborting:
                return await asyncio.shield(self._abort(job))
            self._ending(job)
            await asyncio.shield(self._recorder.interrupt(job.keys, job.token))
            return self._logged(job, Outcome.INTERRUPTED, "worker shutting down; back on the queue")
        except NoFreeSlot as exc:
            return await self._defer(job, exc)
        except Exception as exc:
            return await asyncio.shield(self._failed(job, policy, exc))
        self._ending(job)
        ending = self._recorder.batcher.submit(job.keys.job_id, job.token, result, self._result_ttl_ms(task_def))
        # Not shielded: a cancellation here cancels only this future; the batch still writes the end.
        if not await ending:
            raise LeaseLost(f"finish of job {job.keys.job_id}")
        return self._logged(job, Outcome.SUCCEEDED)

    async def _failed(self, job: TryJob, policy: RetryPolicy, exc: Exception) -> Outcome:
        decision = decide(exc, policy, job.try_number, self._draw)
        if decision.next is Outcome.DEAD_LETTERED:
            return await self._dead_letter(job, exc, failure=decision.failure, reason=decision.reason)
        delay_s = decision.delay_s or 0.0
        delay_ms = round(delay_s * 1000)
        last_error = self._codec.dumps({"e": error_to_dict(exc), "at": self._now_ms()})
        self._ending(job)
        await self._recorder.retry(job.keys, job.token, self._now_ms() + delay_ms, last_error, self._keep_ms(delay_ms))
        detail = f"{decision.failure}: {type(exc).__name__}: {exc}; next try in {delay_s:.2f}s ({decision.reason})"
        return self._logged(job, Outcome.RETRYING, detail, failure=decision.failure, error=exc)

    async def _defer(self, job: TryJob, exc: NoFreeSlot) -> Outcome:
        delay_s = self._config.slot_retry_s * (0.5 + self._draw() / 2)
        self._ending(job)
        await asyncio.shield(self._recorder.defer(job.keys, job.token, self._now_ms() + round(delay_s * 1000)))
        return self._logged(job, Outcome.DEFERRED, f"{exc.what}; again in {delay_s:.2f}s", error=exc)

    async def _abort(self, job: TryJob) -> Outcome:
        error = JobAborted(f"job {job.keys.job_id} was aborted on request")
        result = self._failure_result(job, error, Outcome.ABORTED)
        self._ending(job)
        await self._recorder.finish(job.keys, job.token, result, self._result_ttl_ms(None))
        return self._logged(job, Outcome.ABORTED, error=error)

    async def _dead_letter(
        self,
        job: TryJob,
        exc: BaseException,
        *,
        failure: Outcome = Outcome.FAILED,
        reason: str = "cannot run",
    ) -> Outcome:
        now_ms = self._now_ms()
        error = error_to_dict(exc)
        entry = dead_letter_entry(job, self._config.queue_name, error, now_ms)
        result = self._failure_result(job, exc, Outcome.DEAD_LETTERED)
        self._ending(job)
        dropped = await self._recorder.dead_letter(
            job.keys, job.token, result, self._result_ttl_ms(self._task_or_none(job.task)), entry, now_ms
        )
        detail = f"{failure}: {error['type']}: {error['message']} ({reason})"
        if dropped:
            detail += f"; the dead-letter store was full or old: {dropped} entries dropped"
        return self._logged(job, Outcome.DEAD_LETTERED, detail, failure=failure, error=exc)

    def _result(self, job: TryJob, *, success: bool, value: Any, outcome: Outcome) -> bytes:
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
            return self._result(job, success=False, value=exc, outcome=outcome)
        except (TypeError, ValueError):
            pass
        bare = TryJob(
            job.keys, job.token, None, job.task, (), {}, 0, job.started_ms, job.try_number, job.max_tries,
            job.interruptions,
        )  # fmt: skip
        try:
            return self._result(bare, success=False, value=exc, outcome=outcome)
        except (TypeError, ValueError):
            return None

    def _ending(self, job: TryJob) -> None:
        # The try's outcome is decided and about to be written: its lease needs no renewal from here on.
        if self.on_work_done is not None:
            self.on_work_done(job.keys.job_id)

    def _task_or_none(self, name: str) -> TaskDef[Any, Any] | None:
        return self._registry.get(name) if name in self._registry else None

    def _result_ttl_ms(self, task_def: TaskDef[Any, Any] | None) -> int:
        ttl_s = task_def.result_ttl_s if task_def is not None and task_def.result_ttl_s is not None else None
        return round((self._config.result_ttl_s if ttl_s is None else ttl_s) * 1000)

    def _keep_ms(self, delay_ms: int) -> int:
        return delay_ms + round(self._config.job_expires_s * 1000)

    def _logged(
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
