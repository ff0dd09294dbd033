"""Prometheus metrics of jobq, kept in a registry of their own per process (no global state).

Counters and histograms are per queue and task; each process counts what it did (a worker what it ran,
a producer or the API what it enqueued). Queue gauges describe the shared queue, so every worker reports
the same value: aggregate them with ``max`` in PromQL, not ``sum``.

=========================================  =====================================================
``jobq_jobs_enqueued_total``               jobs written by this process (``created`` ones only)
``jobq_jobs_deduplicated_total``           enqueues a dedup mode dropped or merged; by ``task``, ``mode``, ``outcome``
``jobq_jobs_started_total``                tries started
``jobq_jobs_succeeded_total``              tries that succeeded
``jobq_jobs_failed_total``                 tries that failed; ``reason`` is ``error`` or ``timeout``
``jobq_jobs_retried_total``                failed tries followed by another try
``jobq_jobs_dead_lettered_total``          jobs moved to the dead letters
``jobq_jobs_aborted_total``                jobs aborted on request
``jobq_jobs_interrupted_total``            tries cut short by shutdown (not charged)
``jobq_jobs_parked_total``                 jobs parked to wait for a concurrency slot (not tries)
``jobq_rate_limited_total``                jobs parked over a rate limit (among the parked); by ``task``, ``limit``
``jobq_job_duration_seconds``              histogram of try durations, by ``outcome``
``jobq_job_pickup_latency_seconds``        histogram of the wait between due and started
``jobq_queue_ready_jobs``                  due jobs waiting for a worker (running ones excluded)
``jobq_queue_deferred_jobs``               jobs waiting for their time or their next try
``jobq_queue_waiting_jobs``                due jobs parked until a concurrency slot frees
``jobq_queue_waiting_by_limit_jobs``       the parked jobs by what they wait for: ``limit`` is ``concurrency``
                                           (a task's), ``fleet`` (a ``Limit``) or ``rate`` (a ``RateLimit``)
``jobq_queue_oldest_waiting_age_seconds``  how long the oldest parked job has been due
``jobq_queue_paused``                      1 while the queue is paused
``jobq_queue_in_progress_jobs``            jobs running, as reported by live workers
``jobq_queue_oldest_ready_age_seconds``    how long the oldest waiting due job has waited
``jobq_queue_dead_letters``                dead letters kept
``jobq_workers_up``                        live workers on the queue (recent heartbeat)
``jobq_worker_busy_jobs``                  jobs this worker runs now
``jobq_worker_connected``                  1 while this worker reaches Redis
=========================================  =====================================================
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from itertools import accumulate
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.samples import Sample

from worker.states import Outcome

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class QueueSnapshot(Protocol):
    """What the queue gauges show (:class:`worker.client.stats.QueueStats` is one)."""

    @property
    def queue(self) -> str: ...
    @property
    def ready(self) -> int: ...
    @property
    def deferred(self) -> int: ...
    @property
    def waiting(self) -> int: ...
    @property
    def oldest_waiting_age_s(self) -> float: ...
    @property
    def paused(self) -> bool: ...
    @property
    def running(self) -> int: ...
    @property
    def oldest_ready_age_s(self) -> float: ...
    @property
    def dead_letters(self) -> int: ...
    @property
    def workers(self) -> int: ...


_JOB = ("queue", "task")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class _CounterTally:
    """What one series of a counter counted, in a plain number."""

    __slots__ = ("created", "total")

    def __init__(self) -> None:
        self.total = 0
        self.created = time.time()  # the series appears with its first count, as a prometheus_client child


class _HistogramTally:
    """What one series of a histogram observed: a count per bucket (not cumulative; the last is +Inf) and a sum.

    The sum adds the amounts one by one, as ``Histogram.observe`` does, so it comes out the same.
    """

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1  # the first bucket with amount <= le
        self.sum += amount


class _Counter:
    """A labelled counter: its tallies by label values, exported in the order they appeared."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.tallies: dict[tuple[str, ...], _CounterTally] = {}

    def tally(self, *values: str) -> _CounterTally:
        tally = self.tallies.get(values)
        if tally is None:
            tally = self.tallies[values] = _CounterTally()
        return tally

    def describe(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self, created: bool) -> CounterMetricFamily:
        family = self.describe()
        for values, tally in list(self.tallies.items()):
            family.add_metric(values, tally.total, created=tally.created if created else None)
        return family


class _Histogram:
    """A labelled histogram: its tallies by label values, exported in the order they appeared."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        self.name, self.documentation, self.labelnames, self.bounds = name, documentation, labelnames, bounds
        # ``le`` as prometheus_client spells a bound below 1e6 ("1.0", "0.005"): test_metrics compares expositions.
        self.les = [*(repr(float(bound)) for bound in bounds), "+Inf"]
        self.tallies: dict[tuple[str, ...], _HistogramTally] = {}

    def tally(self, *values: str) -> _HistogramTally:
        tally = self.tallies.get(values)
        if tally is None:
            tally = self.tallies[values] = _HistogramTally(self.bounds)
        return tally

    def describe(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self, created: bool) -> HistogramMetricFamily:
        family = self.describe()
        for values, tally in list(self.tallies.items()):
            family.add_metric(values, list(zip(self.les, accumulate(tally.counts), strict=True)), tally.sum)
            if created:  # HistogramMetricFamily.add_metric takes no created time: its sample, as Histogram makes it
                labels = dict(zip(self.labelnames, values, strict=True))
                family.samples.append(Sample(f"{self.name}_created", labels, tally.created))
        return family


class _TallyCollector:
    """The registry's collector of the counters and histograms, read from the tallies at each collection."""

    def __init__(self, metrics: tuple[_Counter | _Histogram, ...]) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        for metric in self._metrics:
            yield metric.describe()

    def collect(self) -> Iterator[Metric]:
        created = _created_series()
        for metric in self._metrics:
            yield metric.collect(created)


def _created_series() -> bool:
    """Whether prometheus_client exports ``_created`` series now, asked of a throwaway counter of its own.

    So its switches (``PROMETHEUS_DISABLE_CREATED_SERIES``, ``disable_created_metrics()``) hold here too.
    """
    probe = Counter("jobq_probe", "", registry=None)
    return any(sample.name.endswith("_created") for family in probe.collect() for sample in family.samples)


class Metrics:
    """The metrics of one process; ``render()`` is the text exposition for ``/metrics``.

    Tries are counted in plain numbers (a prometheus_client ``inc`` or ``observe`` takes a lock and,
    for a histogram, walks the buckets: a few microseconds a try); a collector of the registry turns
    them into public metric families whenever the registry is collected.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._enqueued = _Counter("jobq_jobs_enqueued", "Jobs enqueued by this process.", _JOB)
        self._deduplicated = _Counter(
            "jobq_jobs_deduplicated", "Enqueues a dedup mode dropped or merged.", ("task", "mode", "outcome")
        )
        self._started = _Counter("jobq_jobs_started", "Tries started.", _JOB)
        self._succeeded = _Counter("jobq_jobs_succeeded", "Tries that succeeded.", _JOB)
        self._failed = _Counter("jobq_jobs_failed", "Tries that failed.", (*_JOB, "reason"))
        retried = _Counter("jobq_jobs_retried", "Failed tries followed by another try.", _JOB)
        dead_lettered = _Counter("jobq_jobs_dead_lettered", "Jobs moved to the dead letters.", _JOB)
        aborted = _Counter("jobq_jobs_aborted", "Jobs aborted on request.", _JOB)
        interrupted = _Counter("jobq_jobs_interrupted", "Tries cut short by shutdown.", _JOB)
        self._parked = _Counter("jobq_jobs_parked", "Jobs parked to wait for a concurrency slot (not tries).", _JOB)
        self._rate_limited = _Counter("jobq_rate_limited", "Jobs parked over a rate limit.", ("task", "limit"))
        self._workflows_started = _Counter("jobq_workflows_started", "Workflows enqueued by this process.", ())
        self._workflows_ended = {
            "completed": _Counter("jobq_workflows_completed", "Workflows a step of this worker's completed.", ()),
            "failed": _Counter("jobq_workflows_failed", "Workflows a step of this worker's failed first.", ()),
        }
        self._duration = _Histogram(
            "jobq_job_duration_seconds", "Duration of tries.", (*_JOB, "outcome"), DURATION_BUCKETS
        )
        self._pickup = _Histogram(
            "jobq_job_pickup_latency_seconds", "Wait between due and started.", _JOB, LATENCY_BUCKETS
        )
        counters = (self._enqueued, self._started, self._succeeded, self._failed, retried, dead_lettered, aborted)
        workflows: tuple[_Counter, ...] = (self._workflows_started, *self._workflows_ended.values())
        for unlabelled in workflows:
            unlabelled.tally()  # exported at 0 from the start, as a prometheus_client counter without labels
        later: tuple[_Counter | _Histogram, ...] = (
            self._deduplicated, self._rate_limited, *workflows, self._duration, self._pickup,
        )  # fmt: skip
        tallied: tuple[_Counter | _Histogram, ...] = (*counters, interrupted, self._parked, *later)
        r.register(_TallyCollector(tallied))
        self.ready = Gauge("jobq_queue_ready_jobs", "Due jobs waiting for a worker.", ("queue",), registry=r)
        self.deferred_jobs = Gauge("jobq_queue_deferred_jobs", "Jobs not due yet.", ("queue",), registry=r)
        self.waiting = Gauge(
            "jobq_queue_waiting_jobs", "Due jobs parked until a concurrency slot frees.", ("queue",), registry=r
        )
        self.waiting_by_limit = Gauge(
            "jobq_queue_waiting_by_limit_jobs", "Parked jobs by what they wait for.", ("queue", "limit"), registry=r
        )
        self.oldest_waiting_age = Gauge(
            "jobq_queue_oldest_waiting_age_seconds", "How long the oldest parked job has been due.", ("queue",),
            registry=r,
        )  # fmt: skip
        self.paused = Gauge("jobq_queue_paused", "1 while the queue is paused.", ("queue",), registry=r)
        self.in_progress = Gauge("jobq_queue_in_progress_jobs", "Jobs running on live workers.", ("queue",), registry=r)
        self.oldest_age = Gauge(
            "jobq_queue_oldest_ready_age_seconds", "Wait of the oldest due job not yet running.", ("queue",), registry=r
        )
        self.dead_letters = Gauge("jobq_queue_dead_letters", "Dead letters kept.", ("queue",), registry=r)
        self.workers_up = Gauge("jobq_workers_up", "Live workers on the queue.", ("queue",), registry=r)
        self.busy = Gauge("jobq_worker_busy_jobs", "Jobs this worker runs now.", ("queue", "worker"), registry=r)
        self.connected = Gauge(
            "jobq_worker_connected", "1 while this worker reaches Redis.", ("queue", "worker"), registry=r
        )

        self._by_outcome = {
            Outcome.SUCCEEDED: self._succeeded,
            Outcome.RETRYING: retried,
            Outcome.DEAD_LETTERED: dead_lettered,
            Outcome.ABORTED: aborted,
            Outcome.INTERRUPTED: interrupted,
        }
        # A try's tallies by what it was: one dict look-up a try instead of one per metric.
        self._started_by: dict[tuple[str, str], tuple[_CounterTally, _HistogramTally | None]] = {}
        self._ended_by: dict[
            tuple[str, str, Outcome, Outcome | None], tuple[tuple[_CounterTally, ...], _HistogramTally | None]
        ] = {}

    def try_started(self, queue: str, task: str, pickup_s: float | None) -> None:
        """A try began, ``pickup_s`` after the job was due."""
        tallies = self._started_by.get((queue, task))
        if tallies is None:
            tallies = self._started_by[queue, task] = (self._started.tally(queue, task), None)
        tallies[0].total += 1
        if pickup_s is not None:
            pickup = tallies[1]
            if pickup is None:  # created on the first pickup: its series appears then
                pickup = self._pickup.tally(queue, task)
                self._started_by[queue, task] = (tallies[0], pickup)
            pickup.observe(max(0.0, pickup_s))

    def try_ended(self, queue: str, task: str, outcome: Outcome, failure: Outcome | None, duration_s: float) -> None:
        """A try ended with ``outcome`` (and ``failure``, FAILED or TIMED_OUT, when it failed)."""
        key = (queue, task, outcome, failure)
        tallies = self._ended_by.get(key)
        if tallies is None:
            tallies = self._ended_by[key] = self._end_tallies(queue, task, outcome, failure)
        counts, duration = tallies
        for tally in counts:
            tally.total += 1
        if duration is not None:
            duration.observe(max(0.0, duration_s))

    def _end_tallies(
        self, queue: str, task: str, outcome: Outcome, failure: Outcome | None
    ) -> tuple[tuple[_CounterTally, ...], _HistogramTally | None]:
        """What a try ending so counts: its counters, and its duration histogram."""
        counts = []
        if failure is not None:
            counts.append(self._failed.tally(queue, task, "timeout" if failure is Outcome.TIMED_OUT else "error"))
        counter = self._by_outcome.get(outcome)
        if counter is not None:
            counts.append(counter.tally(queue, task))
        duration = self._duration.tally(queue, task, outcome.value)
        return tuple(counts), duration

    def job_parked(self, queue: str, task: str, jobs: int = 1) -> None:
        """``jobs`` jobs of this worker's found their concurrency limit full and were parked (no try started)."""
        self._parked.tally(queue, task).total += jobs

    def job_rate_limited(self, task: str, limit: str, jobs: int = 1) -> None:
        """``jobs`` jobs of this worker's were over their rate limit ``limit`` and were parked until their turn."""
        self._rate_limited.tally(task, limit).total += jobs

    def job_enqueued(self, queue: str, task: str) -> None:
        """A producer in this process created a job."""
        self._enqueued.tally(queue, task).total += 1

    def workflow_started(self) -> None:
        """A producer in this process enqueued a workflow."""
        self._workflows_started.tally().total += 1

    def workflow_ended(self, outcome: str) -> None:
        """A step this worker ended completed its workflow (``"completed"``) or failed it first (``"failed"``)."""
        self._workflows_ended[outcome].tally().total += 1

    def job_deduplicated(self, task: str, mode: str, outcome: str) -> None:
        """A producer in this process enqueued a job its task's dedup ``mode`` dropped or merged (``outcome``)."""
        self._deduplicated.tally(task, mode, outcome).total += 1

    def queue_observed(self, stats: QueueSnapshot) -> None:
        """Set the queue gauges from a fresh snapshot."""
        q = stats.queue
        self.ready.labels(q).set(stats.ready)
        self.deferred_jobs.labels(q).set(stats.deferred)
        self.waiting.labels(q).set(stats.waiting)
        self.oldest_waiting_age.labels(q).set(stats.oldest_waiting_age_s)
        self.paused.labels(q).set(1 if stats.paused else 0)
        self.in_progress.labels(q).set(stats.running)
        self.oldest_age.labels(q).set(stats.oldest_ready_age_s)
        self.dead_letters.labels(q).set(stats.dead_letters)
        self.workers_up.labels(q).set(stats.workers)

    def waiting_observed(self, queue: str, by_limit: Mapping[str, int]) -> None:
        """Set the parked jobs' gauge by what they wait for (``concurrency``, ``fleet``, ``rate``)."""
        for limit, waiting in by_limit.items():
            self.waiting_by_limit.labels(queue, limit).set(waiting)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
