"""One try, from its claim to its end: load the job, run it under the task's policies, record what happened.

:class:`JobExecutor` is the seam between the worker's loop and jobq's policies. For each claimed try
(its :class:`~worker.engine.try_handle.TryHandle`) it decodes the envelope the claim loaded, checks
for an abort request and for a job that keeps crashing its workers, runs the attempt
(:mod:`worker.engine.attempt`) and hands the try's end to :class:`~worker.engine.outcomes.TryEnds`,
the one path every end takes (the outcomes are listed there).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from worker.engine.attempt import AttemptRunner
from worker.engine.claim_limits import ClaimLimits
from worker.engine.finish import LeaseLost, TryRecorder
from worker.engine.limiter import NoFreeSlot
from worker.engine.local_slots import LocalSlots
from worker.engine.middleware import MiddlewareChain
from worker.engine.outcomes import TryEnds
from worker.engine.services import WorkerServices
from worker.engine.step_inputs import step_args
from worker.engine.try_handle import TryHandle
from worker.engine.try_records import ExecutionConfig, TryJob, bare_job, decoded_job, refusal
from worker.errors import JobQuarantined, SerializationError, UnknownTaskError
from worker.observability.metrics import Metrics
from worker.policy import RandomDraw, RetryPolicy, resolve_timeout_s
from worker.protocol.options import JobOptions, StepInputs
from worker.protocol.redis_retry import TRANSIENT
from worker.protocol.serialization import EnvelopeCodec
from worker.states import Outcome
from worker.taskdef.context import JobContext
from worker.taskdef.registry import TaskDef, TaskRegistry

logger = logging.getLogger("jobq.execution")


class JobExecutor:
    """Runs claimed tries of one queue; one instance per worker process."""

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
        self._registry = registry
        self._codec = codec
        self._config = config
        self._recorder = recorder
        self._attempts = attempts
        self._clock = clock
        self._policies: dict[str, RetryPolicy] = {}  # per task: its policy over the settings' default
        self._ends = TryEnds(
            registry, codec, config, recorder,
            middleware=middleware if middleware is not None else MiddlewareChain(), clock=clock, draw=draw,
        )  # fmt: skip

    @property
    def middleware(self) -> MiddlewareChain:
        """The hooks around each try (metrics, try logs and Sentry among them: see build_worker)."""
        return self._ends.middleware

    @property
    def claim_limits(self) -> ClaimLimits:
        """What the lane's claims hold back (see worker.engine.claim_limits)."""
        return self._attempts.claim_limits

    @property
    def local_slots(self) -> LocalSlots:
        """The tasks' per-worker concurrency slots, which the lane's claims read (see worker.engine.local_slots)."""
        return self._attempts.local

    def count_held_back(self, parked: dict[str, tuple[int, int]]) -> None:
        """Count the jobs a claim parked in place, by task: (for want of a per-worker slot, over the rate)."""
        if self.metrics is None:
            return
        for task, (for_slot, over_rate) in parked.items():
            self.metrics.job_parked(self._config.queue_name, task, for_slot + over_rate)
            rate = self._registry.get(task).rate_limit if over_rate and task in self._registry else None
            if rate is not None:
                self.metrics.job_rate_limited(task, rate.name, over_rate)

    async def put_back_owed(self) -> None:
        """Put back the waiting jobs the freed per-worker slots owe, now (see AttemptRunner.put_back_owed)."""
        await self._attempts.put_back_owed(self._config.queue_name)

    @property
    def abandoned(self) -> set[asyncio.Future[Any]]:
        """Tasks that ignored their cancellation and still run in the background (see AttemptRunner)."""
        return self._attempts.abandoned

    async def run(self, try_: TryHandle) -> Outcome:
        """Run one claimed try to its recorded end and return its outcome."""
        started = try_.started
        keys = self._recorder.keys(try_.job_id)
        ends = self._ends
        job = bare_job(keys, try_.token, started, round(self._clock() * 1000))
        try:
            refused = refusal(keys, started, self._config.max_envelope_bytes)
            if refused is not None:
                return await ends.dead_letter(try_, job, refused)
            # The job is built once, from its body; a job that cannot be decoded keeps the bare one (task "?").
            try:
                envelope: bytes = started.envelope  # type: ignore[assignment]  # refusal() saw it is there
                body = self._codec.loads_job(envelope, job_id=keys.job_id, queue=keys.queue)
                task_name = body["f"]
                decoded = decoded_job(keys, try_.token, started, job.started_ms, body)
            except Exception as exc:  # whatever the decoder trips on, the job cannot run
                detail = str(exc) if isinstance(exc, SerializationError) else f"{type(exc).__name__}: {exc}"
                return await ends.dead_letter(try_, job, SerializationError(f"unable to decode job: {detail}"))
            job = decoded
            try:
                task_def = self._registry.get(task_name)
            except UnknownTaskError as exc:
                return await ends.dead_letter(try_, job, exc)
            policy = self._policies.get(task_def.name)
            if policy is None:
                policy = self._policies[task_def.name] = task_def.retry_policy(self._config.retry)
            job.max_tries = policy.max_tries
            if started.abort_requested:
                return await ends.abort(try_, job)
            if job.interruptions > self._config.max_interruptions:
                return await ends.dead_letter(
                    try_,
                    job,
                    JobQuarantined(
                        f"job {keys.job_id} was interrupted {job.interruptions} times by worker crashes or "
                        f"shutdowns (JOBQ_MAX_INTERRUPTIONS={self._config.max_interruptions}); quarantined"
                    ),
                )
            job.due_ms = try_.claim.due_ms
            return await self._attempt(try_, job, task_def, policy)
        except LeaseLost as lost:
            return ends.lease_lost(try_, job, f"{lost}: another worker holds the job now", lost)
        except TRANSIENT as exc:
            # Redis is away: the lease decides who runs the job next; this worker recorded nothing.
            ends.lease_lost(try_, job, f"{type(exc).__name__}: {exc}: Redis is unreachable", exc)
            raise
        except Exception as exc:
            # A job this worker cannot handle (a bug, a record it cannot write): dead-lettered now, never
            # left to come back at every lease.
            logger.exception("job %s could not be handled; dead-lettering it", keys.job_id)
            return await ends.dead_letter(try_, job, exc, reason="the worker could not handle it")

    async def flush(self) -> None:
        """Wait until every outcome handed to the recorder has been written."""
        await self._recorder.batcher.wait_idle()

    async def give_back(self, job_id: str, token: str) -> None:
        """Release a claimed job that this worker will not run after all (uncharged)."""
        await self._recorder.give_back(self._recorder.keys(job_id), token)

    async def _take_inputs(self, job: TryJob, inputs: StepInputs) -> None:
        """A workflow step: its payload gets the results of the steps before it; its result is kept for those after."""
        job.keep_result_ms = inputs.keep_ms
        job.workflow = inputs
        if inputs.results is not None:
            job.args = await step_args(self._recorder.redis, self._codec, inputs, job.args)

    async def _attempt(self, try_: TryHandle, job: TryJob, task_def: TaskDef[Any, Any], policy: RetryPolicy) -> Outcome:
        kwargs = dict(job.kwargs)
        options = JobOptions.pop_from(kwargs)
        job.priority = options.priority
        ends = self._ends
        ctx = JobContext(
            job_id=job.keys.job_id,
            task=task_def.name,
            try_number=job.try_number,
            max_tries=job.max_tries,
            interruptions=job.interruptions,
            enqueued_at=datetime.fromtimestamp(job.enqueued_ms / 1000, tz=UTC),
            timeout_s=resolve_timeout_s(options.timeout_s, task_def.timeout_s, self._config.job_timeout_s),
            queue_name=self._config.queue_name,
            redis=self._recorder.redis,
            keep_ms=ends.keep_ms(0),
            clock=self._clock,
            worker_id=self._config.worker_id,
            services=self.services,
            workflow_id=None if options.workflow is None else options.workflow.workflow_id,
        )
        # Each end is marked on the handle before its shielded write is even scheduled: from then on an
        # abort or a lost lease no longer cancels the try (see TryHandle.cancel). The try begins (its hooks run)
        # once its slots are taken: a job that waits for one has not started a try.
        queue = self._config.queue_name
        try:
            if options.workflow is not None:
                await self._take_inputs(job, options.workflow)
            payload = task_def.payload_from_call(job.args, kwargs)
            rate_wait_ms, rate = try_.claim.rate_wait_ms, task_def.rate_limit
            if rate_wait_ms is not None and rate is not None and not rate.claimed_key_holds(payload, options.rate_key):
                rate_wait_ms = None  # the claim counted another key than this worker finds: it checks its own
            holder = f"{job.keys.job_id}:{job.try_number}"
            slots = await self._attempts.take_slots(task_def, payload, holder, queue, rate_wait_ms)
        except NoFreeSlot as exc:
            try_.end()
            if self.metrics is not None:
                self.metrics.job_parked(queue, task_def.name)
                if exc.retry_after_ms is not None and task_def.rate_limit is not None:
                    self.metrics.job_rate_limited(task_def.name, task_def.rate_limit.name)
            waited = await asyncio.shield(ends.wait(try_, job, exc))
            self._attempts.parked(exc.gate)
            return waited
        except asyncio.CancelledError:
            ends.middleware.before_try(job)
            try_.end()
            return await asyncio.shield(ends.cancelled(try_, job))
        except Exception as exc:
            ends.middleware.before_try(job)
            try_.end()
            return await asyncio.shield(ends.failed(try_, job, policy, exc))
        ends.middleware.before_try(job)
        try:
            async with slots:
                value = await self._attempts.run(task_def, ctx, payload)
            result = ends.result(job, success=True, value=task_def.dump_result(value), outcome=Outcome.SUCCEEDED)
        except asyncio.CancelledError:
            try_.end()
            return await asyncio.shield(ends.cancelled(try_, job))
        except Exception as exc:
            try_.end()
            return await asyncio.shield(ends.failed(try_, job, policy, exc))
        return await ends.succeeded(try_, job, task_def, result)
