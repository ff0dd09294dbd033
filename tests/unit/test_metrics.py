"""Prometheus metrics: the exposition parses, and its values match what happened."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.harness import Harness
from worker import Client
from worker.engine.probes import probe_app
from worker.observability.metrics import DURATION_BUCKETS, LATENCY_BUCKETS, Metrics
from worker.states import Outcome


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    parsed = text_string_to_metric_families(metrics.render().decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in parsed for s in family.samples}


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_histograms_and_gauges_match_what_happened(harness: Harness) -> None:
    metrics = harness.worker.metrics
    producer = Client(
        harness.settings, registry=harness.registry, redis=harness.redis, clock=harness.clock, metrics=Metrics()
    )
    for i in range(3):
        await producer.enqueue("add", {"a": i, "b": 1})
    await producer.enqueue("add", {"a": 1, "b": 1}, job_id="dup")
    await producer.enqueue("add", {"a": 1, "b": 1}, job_id="dup")  # not created: not counted
    await harness.client.enqueue("flaky", {"failures": 1})  # fails once, then succeeds
    await harness.client.enqueue("permanent", {})  # dead-lettered
    await harness.client.enqueue("slow", {"seconds": 5})  # times out, dead-lettered (max_tries 1)
    await harness.client.enqueue("add", {"a": 1, "b": 1}, defer_by=60)  # stays deferred
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="gone", defer_by=30)
    await harness.client.abort("gone")  # aborted while queued: no worker involved
    harness.clock.advance(2)  # the due jobs waited 2 s before a worker took them
    await harness.run_due()
    harness.clock.advance(10)
    await harness.run_due()
    await harness.worker.refresh_metrics()
    found = samples(metrics)
    q = harness.settings.queue_name
    assert value(samples(producer.metrics), "jobq_jobs_enqueued_total", queue=q, task="add") == 4  # type: ignore[arg-type]
    assert value(found, "jobq_jobs_started_total", queue=q, task="add") == 4
    assert value(found, "jobq_jobs_succeeded_total", queue=q, task="add") == 4
    assert value(found, "jobq_jobs_started_total", queue=q, task="flaky") == 2
    assert value(found, "jobq_jobs_failed_total", queue=q, task="flaky", reason="error") == 1
    assert value(found, "jobq_jobs_retried_total", queue=q, task="flaky") == 1
    assert value(found, "jobq_jobs_succeeded_total", queue=q, task="flaky") == 1
    assert value(found, "jobq_jobs_dead_lettered_total", queue=q, task="permanent") == 1
    assert value(found, "jobq_jobs_failed_total", queue=q, task="slow", reason="timeout") == 1
    assert value(found, "jobq_jobs_dead_lettered_total", queue=q, task="slow") == 1
    assert value(found, "jobq_job_duration_seconds_count", queue=q, task="add", outcome="succeeded") == 4
    assert value(found, "jobq_job_pickup_latency_seconds_count", queue=q, task="add") == 4
    assert value(found, "jobq_job_pickup_latency_seconds_sum", queue=q, task="add") == 8.0  # 4 jobs, 2 s each
    assert value(found, "jobq_queue_deferred_jobs", queue=q) == 1
    assert value(found, "jobq_queue_ready_jobs", queue=q) == 0
    assert value(found, "jobq_queue_dead_letters", queue=q) == 2
    assert value(found, "jobq_worker_busy_jobs", queue=q, worker=harness.worker.state.worker_id) == 0


async def test_metrics_are_served_next_to_the_probes(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1})
    await harness.run_due()
    app = probe_app(
        harness.worker.state,
        redis_stale_after_s=1,
        metrics=harness.worker.metrics,
        refresh=harness.worker.refresh_metrics,
    )
    async with TestClient(TestServer(app)) as http:
        response = await http.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        names = {f.name for f in text_string_to_metric_families(await response.text())}
    assert {"jobq_jobs_succeeded", "jobq_job_duration_seconds", "jobq_queue_ready_jobs", "jobq_workers_up"} <= names


def exposition(registry: CollectorRegistry) -> list[str]:
    """The exposition's lines, the ``_created`` timestamps masked (they differ between two registries)."""
    lines = generate_latest(registry).decode().splitlines()
    return [re.sub(r"(_created(?:\{.*\})?) \S+$", r"\1 T", line) for line in lines]


def reference() -> tuple[CollectorRegistry, dict[str, Any]]:
    """jobq's metrics declared as prometheus_client's own Counter, Histogram and Gauge: the exposition to match."""
    r, job, dedup = CollectorRegistry(), ("queue", "task"), ("task", "mode", "outcome")
    counters = {
        "enqueued": ("jobq_jobs_enqueued", "Jobs enqueued by this process.", job),
        "started": ("jobq_jobs_started", "Tries started.", job),
        "succeeded": ("jobq_jobs_succeeded", "Tries that succeeded.", job),
        "failed": ("jobq_jobs_failed", "Tries that failed.", (*job, "reason")),
        "retried": ("jobq_jobs_retried", "Failed tries followed by another try.", job),
        "dead_lettered": ("jobq_jobs_dead_lettered", "Jobs moved to the dead letters.", job),
        "aborted": ("jobq_jobs_aborted", "Jobs aborted on request.", job),
        "interrupted": ("jobq_jobs_interrupted", "Tries cut short by shutdown.", job),
        "parked": ("jobq_jobs_parked", "Jobs parked to wait for a concurrency slot (not tries).", job),
        "deduplicated": ("jobq_jobs_deduplicated", "Enqueues a dedup mode dropped or merged.", dedup),
        "rate_limited": ("jobq_rate_limited", "Jobs parked over a rate limit.", ("task", "limit")),
        "workflows_started": ("jobq_workflows_started", "Workflows enqueued by this process.", ()),
        "workflows_completed": ("jobq_workflows_completed", "Workflows a step of this worker's completed.", ()),
        "workflows_failed": ("jobq_workflows_failed", "Workflows a step of this worker's failed first.", ()),
    }
    made: dict[str, Any] = {key: Counter(*spec, registry=r) for key, spec in counters.items()}
    made["duration"] = Histogram(
        "jobq_job_duration_seconds", "Duration of tries.", (*job, "outcome"), buckets=DURATION_BUCKETS, registry=r
    )
    made["pickup"] = Histogram(
        "jobq_job_pickup_latency_seconds", "Wait between due and started.", job, buckets=LATENCY_BUCKETS, registry=r
    )
    gauges = [
        ("jobq_queue_ready_jobs", "Due jobs waiting for a worker.", ("queue",)),
        ("jobq_queue_deferred_jobs", "Jobs not due yet.", ("queue",)),
        ("jobq_queue_waiting_jobs", "Due jobs parked until a concurrency slot frees.", ("queue",)),
        ("jobq_queue_waiting_by_limit_jobs", "Parked jobs by what they wait for.", ("queue", "limit")),
        ("jobq_queue_oldest_waiting_age_seconds", "How long the oldest parked job has been due.", ("queue",)),
        ("jobq_queue_paused", "1 while the queue is paused.", ("queue",)),
        ("jobq_queue_in_progress_jobs", "Jobs running on live workers.", ("queue",)),
        ("jobq_queue_oldest_ready_age_seconds", "Wait of the oldest due job not yet running.", ("queue",)),
        ("jobq_queue_dead_letters", "Dead letters kept.", ("queue",)),
        ("jobq_workers_up", "Live workers on the queue.", ("queue",)),
        ("jobq_worker_busy_jobs", "Jobs this worker runs now.", ("queue", "worker")),
        ("jobq_worker_connected", "1 while this worker reaches Redis.", ("queue", "worker")),
    ]
    for name, documentation, labels in gauges:
        Gauge(name, documentation, labels, registry=r)
    return r, made


def test_tallied_tries_export_what_prometheus_client_would() -> None:
    # Metrics counts tries in plain numbers and exports them through its own collector; ``direct`` is fed
    # through prometheus_client's own inc() and observe(): the two expositions must be the same, byte for byte
    # but the creation times.
    tallied = Metrics()
    registry, direct = reference()
    durations = [0.0, 0.005, 0.0051, 0.1, 1, 3599.9, 3600, 3600.1, 1e9, -1.0, 0.1 + 0.2, 1 / 3]
    ends = [
        (Outcome.SUCCEEDED, None),
        (Outcome.RETRYING, Outcome.FAILED),
        (Outcome.DEAD_LETTERED, Outcome.TIMED_OUT),
        (Outcome.ABORTED, None),
        (Outcome.INTERRUPTED, None),
    ]
    by_outcome = {
        Outcome.SUCCEEDED: "succeeded",
        Outcome.RETRYING: "retried",
        Outcome.DEAD_LETTERED: "dead_lettered",
        Outcome.ABORTED: "aborted",
        Outcome.INTERRUPTED: "interrupted",
    }

    def run(start: int, stop: int) -> None:
        for i in range(start, stop):
            task = ("add", "slow")[i // len(ends) % 2]  # each task sees every end
            amount = durations[i % len(durations)]
            outcome, failure = ends[i % len(ends)]
            pickup = None if i % 3 == 0 else amount
            tallied.try_started("q", task, pickup)
            direct["started"].labels("q", task).inc()
            if pickup is not None:
                direct["pickup"].labels("q", task).observe(max(0.0, pickup))
            tallied.try_ended("q", task, outcome, failure, amount)
            if failure is not None:
                reason = "timeout" if failure is Outcome.TIMED_OUT else "error"
                direct["failed"].labels("q", task, reason).inc()
            direct[by_outcome[outcome]].labels("q", task).inc()
            direct["duration"].labels("q", task, outcome.value).observe(max(0.0, amount))
            if i % 5 == 0:
                tallied.job_parked("q", task)
                direct["parked"].labels("q", task).inc()
                tallied.job_rate_limited(task, "api")
                direct["rate_limited"].labels(task, "api").inc()
            tallied.job_enqueued("q", task)
            direct["enqueued"].labels("q", task).inc()
            if i % 7 == 0:
                outcome_of_dedup = ("dropped", "replaced")[i % 2]
                tallied.job_deduplicated(task, "debounce", outcome_of_dedup)
                direct["deduplicated"].labels(task, "debounce", outcome_of_dedup).inc()
            if i % 11 == 0:
                tallied.workflow_started()
                direct["workflows_started"].inc()
                ended = ("completed", "failed")[i % 2]
                tallied.workflow_ended(ended)
                direct[f"workflows_{ended}"].inc()

    assert exposition(tallied.registry) == exposition(registry)  # nothing counted yet: the same HELP and TYPE
    run(0, 100)
    assert exposition(tallied.registry) == exposition(registry)
    assert exposition(tallied.registry) == exposition(registry)  # a second collection adds nothing
    run(100, 237)  # more tries after a collection: only they are added
    assert exposition(tallied.registry) == exposition(registry)
    lines = exposition(tallied.registry)
    buckets = [line for line in lines if line.startswith("jobq_job_duration_seconds_bucket")]
    assert len(buckets) == 2 * 5 * (len(DURATION_BUCKETS) + 1)  # 2 tasks x 5 outcomes with a duration
    assert any(line.startswith("jobq_job_duration_seconds_created{") for line in lines)
