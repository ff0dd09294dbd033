"""Wiring: settings and a registry in, a ready :class:`~worker.engine.arq_worker.JobqWorker` out."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from arq.connections import ArqRedis
from arq.worker import Function, func

from worker.client.producer import Client
from worker.engine.arq_worker import JobqWorker
from worker.engine.attempt import AttemptRunner
from worker.engine.executor import JobExecutor
from worker.engine.finish import DeadLetterBounds, TryRecorder
from worker.engine.health import Heartbeat, WorkerState, default_worker_id
from worker.engine.leases import Leases
from worker.engine.limiter import DistributedLimiter
from worker.engine.middleware import MiddlewareChain, load_middleware
from worker.engine.scheduler import CronScheduler
from worker.engine.services import Resources, WorkerServices
from worker.engine.slots import SlotBroker
from worker.engine.try_records import ExecutionConfig
from worker.observability.metrics import Metrics
from worker.observability.middleware import MetricsMiddleware, SentryMiddleware, TryLogMiddleware
from worker.observability.tracing import monitor_configs
from worker.policy import RandomDraw, import_error_types, resolve_timeout_s
from worker.process.supervisor import supervised_slot
from worker.protocol.connection import codec_for
from worker.protocol.enqueue_script import record_ttl_ms
from worker.settings import JobqSettings
from worker.taskdef.cron import effective_schedules, schedules_from_modules
from worker.taskdef.middleware import Middleware
from worker.taskdef.registry import TaskRegistry

if TYPE_CHECKING:
    from arq.typing import WorkerCoroutine


def arq_functions(registry: TaskRegistry, settings: JobqSettings) -> list[Function]:
    """arq's view of the tasks (names and timeouts); jobq's executor calls the tasks itself."""
    return [
        func(
            cast("WorkerCoroutine", task_def.fn),
            name=task_def.name,
            timeout=resolve_timeout_s(None, task_def.timeout_s, settings.job_timeout_s),  # a job that asks for none
        )
        for task_def in registry
    ]


def execution_config(settings: JobqSettings, worker_id: str) -> ExecutionConfig:
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
        worker_id=worker_id,
        max_envelope_bytes=settings.max_envelope_bytes,
    )


def middleware_chain(
    settings: JobqSettings, metrics: Metrics, monitors: dict[str, Any], extra: Sequence[Middleware] = ()
) -> MiddlewareChain:
    """The hooks around each try, the one place they are put in order: Sentry (outermost: its scope and
    transaction wrap every other hook), metrics, the try log line, then ``JOBQ_MIDDLEWARE``'s, then ``extra``.
    ``before_try`` hooks run in this order, ``after_try`` hooks in reverse."""
    return MiddlewareChain(
        [
            SentryMiddleware(monitors),
            MetricsMiddleware(metrics),
            TryLogMiddleware(),
            *load_middleware(settings.middleware),
            *extra,
        ]
    )


def build_worker(
    settings: JobqSettings,
    registry: TaskRegistry,
    redis: ArqRedis,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    clock: Callable[[], float] = time.time,
    draw: RandomDraw = random.random,
    worker_id: str | None = None,
    middleware: Sequence[Middleware] = (),
    metrics: Metrics | None = None,
    cron: bool = True,
) -> JobqWorker:
    """A :class:`JobqWorker` for ``registry`` on ``redis``; call it inside the running event loop.

    ``middleware`` runs around every try after the built-in ones and those of ``JOBQ_MIDDLEWARE``
    (see :func:`middleware_chain`). ``metrics``: the process's metrics, when several workers (the lanes of
    :func:`build_lanes`) share them; ``cron``: whether this worker enqueues the schedules' ticks.
    """
    codec = codec_for(settings)
    worker_id = worker_id or default_worker_id()
    bounds = DeadLetterBounds(
        max_entries=settings.dead_letter_max_entries, retention_ms=round(settings.dead_letter_retention_s * 1000)
    )
    schedules = effective_schedules(schedules_from_modules(settings.task_modules), settings.cron)
    metrics = Metrics() if metrics is None else metrics
    client = Client(settings, registry=registry, redis=redis, metrics=metrics)
    services = WorkerServices(settings=settings, client=client, resources=Resources(settings))
    executor = JobExecutor(
        registry,
        codec,
        execution_config(settings, worker_id),
        recorder=TryRecorder(redis, settings.queue_name, bounds),
        attempts=AttemptRunner(
            registry,
            DistributedLimiter(
                redis,
                settings.limit_lease_s,
                clock=clock,
                rate_hold_s=settings.rate_hold_s,
                max_holding=max(1, settings.max_jobs // 2),
            ),
            cancel_grace_s=settings.cancel_grace_s,
        ),
        clock=clock,
        draw=draw,
        services=services,
        metrics=metrics,
        middleware=middleware_chain(settings, metrics, monitor_configs(schedules), middleware),
    )
    scheduler = None
    if schedules and cron:
        scheduler = CronScheduler(
            redis, codec, settings.queue_name, schedules,
            misfire_grace_s=settings.cron_misfire_grace_s, lookahead_s=max(1.0, 2 * settings.poll_delay_s),
            job_expires_s=settings.job_expires_s, clock=clock, record_ttl_ms=record_ttl_ms(settings),
        )  # fmt: skip
    state = WorkerState(worker_id=worker_id, queue=settings.queue_name, slot=supervised_slot())
    return JobqWorker(
        executor=executor,
        leases=Leases(
            redis,
            settings.queue_name,
            worker_id,
            settings.lease_ttl_s,
            max_envelope_bytes=settings.max_envelope_bytes,
            slot_recheck_s=settings.slot_retry_s,
        ),
        heartbeat=Heartbeat(redis, state, settings.health_interval_s),
        state=state,
        scheduler=scheduler,
        settings=settings,
        clock=clock,
        functions=arq_functions(registry, settings),
        queue_name=settings.queue_name,
        redis_pool=redis,
        burst=burst,
        handle_signals=handle_signals,
        max_jobs=settings.max_jobs,
        poll_delay=settings.poll_delay_s,
        job_serializer=codec.dumps,
        job_deserializer=codec.loads,
        expires_extra_ms=int(settings.job_expires_s * 1000),
    )


def build_lanes(
    settings: JobqSettings, registry: TaskRegistry, redis: ArqRedis, *, burst: bool = False
) -> list[JobqWorker]:
    """One worker per queue of ``JOBQ_QUEUES`` (its *lanes*), sharing ``redis``, the metrics and the process's
    ``JOBQ_MAX_JOBS`` slots (:class:`~worker.engine.slots.SlotBroker`); call it inside the running event loop.

    The first lane has the process's worker id, its HTTP port (probes and ``/metrics``, for every lane) and the
    cron schedules; the others are ``<id>/<queue>``. No lane installs signal handlers: the caller sends each
    signal to every lane (:class:`~worker.engine.group.WorkerGroup`).
    """
    plan = settings.queue_plan
    broker = SlotBroker(plan, settings.max_jobs)
    metrics = Metrics()
    base_id = default_worker_id()
    lanes = []
    for i, queue in enumerate(plan.queues):
        lane_settings = settings.model_copy(
            update={"queue_name": queue, "queues": "", "http_port": settings.http_port if i == 0 else None}
        )
        lane = build_worker(
            lane_settings, registry, redis, burst=burst, handle_signals=False,
            worker_id=base_id if i == 0 else f"{base_id}/{queue}", metrics=metrics, cron=i == 0,
        )  # fmt: skip
        lane.join(broker)
        lane.owns_pool = i == 0
        lanes.append(lane)
    lanes[0].also_observed = lanes[1:]
    return lanes
