"""The producer client: validate a payload, wrap it in an envelope, and enqueue it in one round trip.

Jobs are written in arq's layout (``arq:job:<id>`` plus a member of the queue's sorted set), so a
stock arq worker or client configured with jobq's serializer reads them too. An enqueue is one
Lua script call; a batch is one script call per :data:`BATCH_CHUNK` jobs of a queue. The script
also wakes one idle worker of the queue (see :mod:`worker.engine.marker`). The payload and options are
validated before anything is written (see :mod:`worker.client.checks`), and an existing ``job_id``
is never enqueued twice. Each call carries a random request id that the script records with what it
created, so a call re-sent after its reply was lost (redis-py retries on a dropped connection) is
answered the same and writes nothing again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Self, TypeVar, overload

from arq.connections import ArqRedis
from pydantic import BaseModel

import worker.client.checks as checks
from worker.client.checks import MAX_JOB_ID_LEN
from worker.client.dedup_write import DedupPlan, DedupWriter, dedup_plan
from worker.client.depends_write import MAX_DEPENDENCIES, write_after
from worker.client.enqueue_write import EnqueueWriter, PreparedJob, record_ttl_ms
from worker.client.handle import HandleContext, JobHandle
from worker.client.pause import QueuePause, default_by, pause_queue, queue_pause, resume_queue
from worker.client.workflow_list import WorkflowSummary, list_workflows
from worker.client.workflow_status import WorkflowHandle
from worker.client.workflows import WorkflowWriter, plan_workflow
from worker.deprecations import renamed_argument
from worker.errors import EnvelopeTooLarge, InvalidJobOptions
from worker.observability.metrics import Metrics
from worker.observability.tracing import trace_headers
from worker.protocol.connection import close_redis, codec_for, create_redis
from worker.protocol.enqueue_script import GIVEN_ID, RANDOM_ID
from worker.protocol.keys import check_queue_name
from worker.protocol.records import job_record
from worker.protocol.scripts import Scripts
from worker.protocol.serialization import EnvelopeCodec
from worker.settings import JobqSettings
from worker.states import JobStatus
from worker.taskdef.registry import TaskDef, TaskRegistry
from worker.taskdef.requests import Delay, JobRequest, job_requests
from worker.taskdef.workflow import Node

#: Jobs written per pipelined round trip by :meth:`Client.enqueue_many`.
BATCH_CHUNK = 1000

__all__ = ["BATCH_CHUNK", "MAX_JOB_ID_LEN", "Client", "Delay", "JobRequest", "job_requests", "record_ttl_ms"]

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R")


class Client:
    """Async producer client. Use ``async with Client(settings) as client:``.

    ``registry`` resolves task names; when omitted it is loaded from ``JOBQ_TASK_MODULES`` the first
    time a task is given by name. Passing the ``TaskDef`` itself needs no registry. With ``metrics``,
    every job created is counted in ``jobq_jobs_enqueued_total``.
    """

    def __init__(
        self,
        settings: JobqSettings,
        *,
        registry: TaskRegistry | None = None,
        redis: ArqRedis | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._registry = registry
        self._codec: EnvelopeCodec = codec_for(settings)
        self._owns_redis = redis is None
        self.redis = redis if redis is not None else create_redis(settings, self._codec)
        self._clock = clock
        self._writer = EnqueueWriter(self.redis, settings)
        self._dedup_writer = DedupWriter(self.redis, settings, self._codec)  # tasks with @task(dedup=...)
        self._expires_ms = int(settings.job_expires_s * 1000)
        self._max_envelope = settings.max_envelope_bytes
        self._queues_ok = {settings.queue_name}  # names already checked (the hot path checks each once)
        self._handle_ctx = HandleContext(self.redis, self._codec, clock, round(settings.result_ttl_s * 1000))
        self._workflows = WorkflowWriter(
            Scripts.of(self.redis), self._codec, max_envelope_bytes=self._max_envelope, queue_of=self._queue
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the Redis connections this client opened."""
        if self._owns_redis:
            await close_redis(self.redis)

    @property
    def clock(self) -> Callable[[], float]:
        """The clock this client stamps jobs with (injected in tests)."""
        return self._clock

    @property
    def registry(self) -> TaskRegistry:
        """The task registry (loaded from the settings on first use)."""
        if self._registry is None:
            self._registry = TaskRegistry.from_modules(self.settings.task_modules)
        return self._registry

    def _task(self, task: TaskDef[Any, Any] | str) -> TaskDef[Any, Any]:
        return task if isinstance(task, TaskDef) else self.registry.get(checks.task_name(task))

    def _queue(self, queue: str | None, at: str = "") -> str:
        if queue is None:
            return self.settings.queue_name
        if isinstance(queue, str) and queue in self._queues_ok:
            return queue
        self._queues_ok.add(check_queue_name(queue, where=at))
        return queue

    @overload
    def job(self, job_id: str, *, task: TaskDef[Any, R], queue: str | None = None) -> JobHandle[R]: ...
    @overload
    def job(self, job_id: str, *, task: str | None = None, queue: str | None = None) -> JobHandle[Any]: ...
    def job(
        self, job_id: str, *, task: TaskDef[Any, Any] | str | None = None, queue: str | None = None
    ) -> JobHandle[Any]:
        """A handle to an existing job; give ``task`` to get results back as its result model."""
        task_def = None if task is None else self._task(task)
        return self._new_handle(job_id, self._queue(queue), task_def, created=True)

    def rebind(self, handle: JobHandle[R]) -> JobHandle[R]:
        """The same job's handle on this client's connection (for a handle made by another client)."""
        created, deduplicated = handle.created, handle.deduplicated
        return JobHandle(handle.job_id, handle.queue_name, self._handle_ctx, handle.task, created, deduplicated)

    async def abort(
        self, job_id: str, *, queue: str | None = None, wait_s: float | None = None, wait: float | None = None
    ) -> JobStatus:
        """Abort a job by id; see :meth:`JobHandle.abort` (``wait`` is the deprecated spelling of ``wait_s``)."""
        if wait is not None:
            wait_s = renamed_argument("Client.abort", "wait", wait, "wait_s", wait_s)
        return await self.job(job_id, queue=queue).abort(wait_s=wait_s)

    async def pause(self, queue: str | None = None, *, by: str | None = None) -> bool:
        """Pause a queue (the settings' by default): workers stop claiming from it, enqueues still land, running
        jobs finish; it lasts until :meth:`resume`. ``by`` is recorded with it (the host name by default).
        ``False`` when the queue was paused already."""
        name = self._queue(queue, "Client.pause(queue=...)")
        return await pause_queue(self.redis, name, by=default_by() if by is None else by, now_ms=self._now_ms())

    async def resume(self, queue: str | None = None) -> bool:
        """Resume a paused queue; an idle worker claims from it at once. ``False`` when it was not paused."""
        return await resume_queue(self.redis, self._queue(queue, "Client.resume(queue=...)"))

    async def pause_of(self, queue: str | None = None) -> QueuePause | None:
        """The pause in force on a queue, or ``None`` when it is not paused."""
        return await queue_pause(self.redis, self._queue(queue, "Client.pause_of(queue=...)"))

    def _new_handle(
        self, job_id: str, queue: str, task_def: TaskDef[Any, Any] | None, *, created: bool
    ) -> JobHandle[Any]:
        return JobHandle(job_id, queue, self._handle_ctx, task_def, created)

    @overload
    async def enqueue(
        self,
        task: TaskDef[P, R],
        payload: P | Mapping[str, Any],
        *,
        job_id: str | None = None,
        defer_by: Delay | None = None,
        defer_until: datetime | None = None,
        timeout_s: float | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        priority: int | None = None,
        dedup_key: str | None = None,
        depends_on: Iterable[str | JobHandle[Any]] | None = None,
    ) -> JobHandle[R]: ...
    @overload
    async def enqueue(
        self,
        task: str,
        payload: Any,
        *,
        job_id: str | None = None,
        defer_by: Delay | None = None,
        defer_until: datetime | None = None,
        timeout_s: float | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        priority: int | None = None,
        dedup_key: str | None = None,
        depends_on: Iterable[str | JobHandle[Any]] | None = None,
    ) -> JobHandle[Any]: ...
    async def enqueue(
        self,
        task: TaskDef[Any, Any] | str,
        payload: Any,
        *,
        job_id: str | None = None,
        defer_by: Delay | None = None,
        defer_until: datetime | None = None,
        timeout_s: float | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        priority: int | None = None,
        dedup_key: str | None = None,
        depends_on: Iterable[str | JobHandle[Any]] | None = None,
    ) -> JobHandle[Any]:
        """Validate ``payload`` against the task's model and enqueue one job.

        Raises :class:`~worker.errors.UnknownTaskError`, :class:`~worker.errors.InvalidPayload`
        (naming each bad field; :class:`~worker.errors.EnvelopeTooLarge` beyond
        ``JOBQ_MAX_ENVELOPE_BYTES``) or :class:`~worker.errors.InvalidJobOptions` (naming the option;
        :class:`~worker.errors.InvalidQueueName` for the queue) before writing anything, and
        :class:`~worker.errors.RedisPermissionError` when Redis refuses this client's ACL user what a
        worker needs to claim the job (checked once per queue). With a ``job_id`` that already exists,
        nothing is written and the returned handle has ``created == False``. ``timeout_s`` is the time
        limit of each try of this job (shorter or longer than the task's); ``timeout`` is its deprecated spelling.
        ``priority`` (0 to 255; the task's, 0 unless it says otherwise) orders the job within its queue: higher
        runs first, FIFO within one priority; a deferred job takes its priority when it is due.
        A job of a task with a dedup mode (``@task(dedup=...)``) may be dropped or merged into the job holding
        its key (``created == False``, ``deduplicated`` says which, ``job_id`` is that job's); ``dedup_key`` is
        its key instead of the one the mode computes from the payload (README, "Deduplication").
        ``depends_on`` (job ids or handles, at most 1,000) makes the job wait, in no queue, until every one of them
        has succeeded (status ``blocked``); when one fails for good the job is ``cancelled``, and a replay of that
        one that succeeds resumes it (README, "Workflows").
        """
        if timeout is not None:
            timeout_s = renamed_argument("Client.enqueue", "timeout", timeout, "timeout_s", timeout_s)
        request = JobRequest(
            task, payload, job_id, defer_by, defer_until, timeout_s, queue, priority=priority, dedup_key=dedup_key
        )
        prepared = self._prepare(request, now_ms=self._now_ms(), trace=trace_headers())
        if depends_on is not None:
            return await self._write_after(prepared, request, depends_on)
        if prepared.dedup is not None:
            return await self._write_deduplicated(prepared, prepared.dedup)
        (created,) = await self._writer.write([prepared])
        return self._handle(prepared, bool(created))

    async def enqueue_many(self, requests: Iterable[JobRequest]) -> list[JobHandle[Any]]:
        """Validate every job of the batch, then write them in one round trip per chunk.

        Nothing is written unless every payload and option of the batch is valid; errors name the
        batch item. Handles come back in the order of ``requests``.
        """
        now_ms = self._now_ms()
        trace = trace_headers()  # the same for every job of the batch
        prepared = [self._prepare(r, now_ms=now_ms, trace=trace, item=i) for i, r in enumerate(requests)]
        by_queue: dict[str, list[int]] = {}
        deduplicated: list[tuple[int, DedupPlan]] = []  # jobs of tasks with a dedup mode, written last
        for i, p in enumerate(prepared):
            if p.dedup is None:
                by_queue.setdefault(p.queue, []).append(i)
            else:
                deduplicated.append((i, p.dedup))
        created = [0] * len(prepared)
        for indexes in by_queue.values():
            for start in range(0, len(indexes), BATCH_CHUNK):
                chunk = indexes[start : start + BATCH_CHUNK]
                for i, c in zip(chunk, await self._writer.write([prepared[i] for i in chunk]), strict=True):
                    created[i] = c
        handles = [self._handle(p, bool(c)) for p, c in zip(prepared, created, strict=True)]
        for i, plan in deduplicated:
            handles[i] = await self._write_deduplicated(prepared[i], plan)
        return handles

    async def _write_after(
        self, prepared: PreparedJob, request: JobRequest, depends_on: Iterable[str | JobHandle[Any]]
    ) -> JobHandle[Any]:
        if isinstance(depends_on, str):
            raise InvalidJobOptions(
                "depends_on must be a list of job ids or handles, not one string", field="depends_on"
            )
        ids = [d.job_id if isinstance(d, JobHandle) else checks.check_job_id(d, " in depends_on") for d in depends_on]
        if not ids or len(ids) > MAX_DEPENDENCIES:
            raise InvalidJobOptions(
                f"depends_on must name 1 to {MAX_DEPENDENCIES} jobs, got {len(ids)}", field="depends_on"
            )
        if prepared.dedup is not None or prepared.fair_key or request.defer_by is not None or request.defer_until:
            raise InvalidJobOptions(
                "depends_on does not combine with a dedup mode, fair_by, defer_by or defer_until", field="depends_on"
            )
        await self._writer.permissions(prepared.queue)
        status = await write_after(self.redis, prepared, list(dict.fromkeys(ids)))
        await self._writer.index(prepared.queue)
        return self._handle(prepared, status is not None)

    async def enqueue_workflow(
        self, workflow: Node, *, workflow_id: str | None = None, on_failure: str = "stop"
    ) -> WorkflowHandle:
        """Enqueue a workflow (a :func:`~worker.chain`, :func:`~worker.group`, :func:`~worker.chord` or one step),
        atomically: every step is written, or none runs.

        Raises :class:`~worker.WorkflowDefinitionError` when a step cannot take what comes before it, and the
        enqueue's errors (a payload, an option, a taken ``workflow_id``) before anything runs. ``on_failure``:
        ``"stop"`` (a step that fails for good cancels what waits on it) or ``"continue"`` (the steps after it run,
        and each one's input is the outcomes ``{"ok": ..., "value" | "error": ...}`` of the steps before it).
        """
        if on_failure not in ("stop", "continue"):
            raise InvalidJobOptions(f"on_failure must be 'stop' or 'continue', got {on_failure!r}", field="on_failure")
        wf_id = checks.random_job_id() if workflow_id is None else checks.check_job_id(workflow_id, " (workflow_id)")
        planned = plan_workflow(workflow, wf_id, outcomes=on_failure == "continue")
        now_ms, trace = self._now_ms(), trace_headers()
        ttl_ms = self._expires_ms + self._handle_ctx.result_ttl_ms
        outcomes = on_failure == "continue"
        encoded = [
            self._workflows.encode(wf_id, s, now_ms=now_ms, keep_ms=ttl_ms, outcomes=outcomes, trace=trace)
            for s in planned.steps
        ]
        for queue in dict.fromkeys(e.queue for e in encoded):
            await self._writer.permissions(queue)
        await self._workflows.write(planned, encoded, ttl_ms=ttl_ms, now_ms=now_ms, on_failure=on_failure)
        for queue in dict.fromkeys(e.queue for e in encoded):
            await self._writer.index(queue)
        if self.metrics is not None:
            self.metrics.workflow_started()
            for e in encoded:
                self.metrics.job_enqueued(e.queue, e.planned.step.task.name)
        queue_of = {e.planned.job_id: e.queue for e in encoded}
        last = [self._new_handle(s.job_id, queue_of[s.job_id], s.step.task, created=True) for s in planned.last]
        return WorkflowHandle(wf_id, self._handle_ctx, last, self.job)

    def workflow(self, workflow_id: str) -> WorkflowHandle:
        """A handle to an enqueued workflow (its last steps are read from its record by :meth:`WorkflowHandle.load`,
        or by its first :meth:`~WorkflowHandle.wait`)."""
        return WorkflowHandle(workflow_id, self._handle_ctx, [], self.job)

    async def workflows(self, limit: int = 50) -> list[WorkflowSummary]:
        """The workflows enqueued most recently (newest first, at most ``limit``; the index keeps the newest
        10,000 whose records have not expired), each with its state as its record says."""
        return await list_workflows(self._handle_ctx.redis, limit)

    def _handle(self, prepared: PreparedJob, created: bool) -> JobHandle[Any]:
        if created and self.metrics is not None:
            self.metrics.job_enqueued(prepared.queue, prepared.task.name)
        return self._new_handle(prepared.job_id, prepared.queue, prepared.task, created=created)

    async def _write_deduplicated(self, prepared: PreparedJob, plan: DedupPlan) -> JobHandle[Any]:
        written = await self._dedup_writer.write(prepared, plan)
        await self._writer.index(prepared.queue)  # the queues index, as the other enqueues keep it
        if self.metrics is not None:
            if written.created:
                self.metrics.job_enqueued(prepared.queue, prepared.task.name)
            elif written.outcome is not None:
                self.metrics.job_deduplicated(prepared.task.name, plan.mode.mode, written.outcome)
        ctx, created, outcome = self._handle_ctx, written.created, written.outcome
        return JobHandle(written.job_id, prepared.queue, ctx, prepared.task, created, outcome)

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    def _prepare(
        self, request: JobRequest, *, now_ms: int, trace: dict[str, str], item: int | None = None
    ) -> PreparedJob:
        # The hot path of enqueue_many: messages are built only when something is wrong.
        at = checks.where(item)
        task_def = self._task(request.task)
        model = task_def.validate(request.payload, item=item)
        payload = checks.json_payload(task_def, model, item)
        given = request.job_id is not None
        job_id = checks.check_job_id(request.job_id, at) if given else checks.random_job_id()
        if request.defer_by is None and request.defer_until is None:
            score_ms = now_ms
        else:
            score_ms = checks.score_ms(request.defer_by, request.defer_until, now_ms, at)
        options, priority = _job_options(request, task_def, model, trace, at)
        queue = self._queue(task_def.queue if request.queue is None else request.queue, at)
        envelope = job_record(task_def.name, payload, now_ms, options)
        try:
            body = self._codec.dumps_job(envelope, job_id=job_id, queue=queue)  # bound: a copy never runs
        except (ValueError, TypeError) as exc:  # NaN or infinity, an integer beyond 64 bits, nesting too deep
            raise checks.unencodable(task_def, payload, exc, item) from None
        if len(body) > self._max_envelope:
            raise EnvelopeTooLarge(task_def.name, len(body), self._max_envelope, item=item)
        ttl_ms = score_ms - now_ms + self._expires_ms if score_ms > now_ms else self._expires_ms
        if ttl_ms > checks.MAX_TTL_MS:
            checks.check_ttl_ms(ttl_ms, at)
        flag = GIVEN_ID if given else RANDOM_ID
        job = PreparedJob(task_def, job_id, queue, score_ms, ttl_ms, body, flag, priority, now_ms)
        if task_def.fair_by is not None:
            job.fair_key = checks.fair_key(task_def, model, priority, at)
        if task_def.dedup is not None or request.dedup_key is not None:
            job.dedup = dedup_plan(task_def, model, request.dedup_key, envelope, at)
        return job


def _job_options(
    request: JobRequest, task_def: TaskDef[Any, Any], model: BaseModel, trace: dict[str, str], at: str
) -> tuple[dict[str, Any], int]:
    """The job's options (its envelope's ``_jobq`` argument: worker.protocol.options) and its priority."""
    options: dict[str, Any] = {}
    if request.timeout_s is not None:
        options["timeout_s"] = checks.check_timeout(task_def, request.timeout_s, at)
    if trace:
        options["trace"] = trace
    priority = request.priority
    priority = task_def.priority if priority is None else checks.check_priority(task_def, priority, at)
    if priority:
        options["priority"] = priority
    if task_def.rate_limit is not None and (rate_key := task_def.rate_limit.key_for_claim(model)) is not None:
        options["rate_key"] = rate_key  # the claim checks the rate with it (worker.engine.claim_limits)
    return options, priority
