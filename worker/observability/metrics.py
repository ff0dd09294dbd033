"""Prometheus metrics of jobq, kept in a registry of their own per process (no global state).

Counters and histograms are per queue and task; each process counts what it did (a worker what it ran,
a producer or the API what it enqueued). Queue gauges describe the shared queue, so every worker reports
the same value: aggregate them with ``max`` in PromQL, not ``sum``.

=========================================  =====================================================
``jobq_jobs_enqueued_total``               jobs written by this process (``created`` ones only)
``jobq_jobs_started_total``                tries started
``jobq_jobs_succeeded_total``              tries that succeeded
``jobq_jobs_failed_total``                 tries that failed; ``reason`` is ``error`` or ``timeout``
``jobq_jobs_retried_total``                failed tries followed by another try
``jobq_jobs_dead_lettered_total``          jobs moved to the dead letters
``jobq_jobs_aborted_total``                jobs aborted on request
``jobq_jobs_interrupted_total``            tries cut short by shutdown (not charged)
``jobq_jobs_deferred_total``               starts given back for want of a concurrency slot
``jobq_job_duration_seconds``              histogram of try durations, by ``outcome``
``jobq_job_pickup_latency_seconds``        histogram of the wait between due and started
``jobq_queue_ready_jobs``                  due jobs waiting for a worker (running ones excluded)
``jobq_queue_deferred_jobs``               jobs waiting for their time or their next try
``jobq_queue_in_progress_jobs``            jobs running, as reported by live workers
``jobq_queue_oldest_ready_age_seconds``    how long the oldest waiting due job has waited
``jobq_queue_dead_letters``                dead letters kept
``jobq_workers_up``                        live workers on the queue (recent heartbeat)
``jobq_worker_busy_jobs``                  jobs this worker runs now
``jobq_worker_connected``                  1 while this worker reaches Redis
=========================================  =====================================================
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

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
    """What one counter child counted, in a plain number: pushed into the child before a collection."""

    __slots__ = ("child", "pushed", "total")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.total = 0
        self.pushed = 0  # written only by push, so a push racing a count loses nothing

    def push(self) -> None:
        total = self.total
        if total != self.pushed:
            self.child.inc(total - self.pushed)
            self.pushed = total


class _HistogramTally:
    """What one histogram child observed, as bucket counts and a sum: pushed before a collection.

    The sum adds the amounts one by one, as ``Histogram.observe`` would, so it comes out the same.
    """

    __slots__ = ("bounds", "child", "counts", "pushed", "sum")

    def __init__(self, child: Any, bounds: tuple[float, ...]) -> None:
        self.child = child
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.pushed = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1  # the first bucket with amount <= le
        self.sum += amount

    def push(self) -> None:
        # prometheus_client has no public call to add to a bucket; tests/unit/test_metrics.py checks
        # that the exposition is what observe() would have made.
        for i, count in enumerate(self.counts):
            if count != self.pushed[i]:
                self.child._buckets[i].inc(count - self.pushed[i])
                self.pushed[i] = count
        self.child._sum.set(self.sum)


class _PushFirst(Collector):
    """Registered before the metrics: whoever collects the registry sees every try counted so far."""

    def __init__(self, push: Callable[[], None]) -> None:
        self._push = push

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self._push()
        return []


class Metrics:
    """The metrics of one process; ``render()`` is the text exposition for ``/metrics``.

    Tries are counted in plain numbers (a prometheus_client ``inc`` or ``observe`` takes a lock and,
    for a histogram, walks the buckets: a few microseconds a try); they reach the counters and
    histograms whenever the registry is collected.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._tallies: dict[tuple[object, ...], _CounterTally | _HistogramTally] = {}
        r.register(_PushFirst(self._push))
        self.enqueued = Counter("jobq_jobs_enqueued", "Jobs enqueued by this process.", _JOB, registry=r)
        self.started = Counter("jobq_jobs_started", "Tries started.", _JOB, registry=r)
        self.succeeded = Counter("jobq_jobs_succeeded", "Tries that succeeded.", _JOB, registry=r)
        self.failed = Counter("jobq_jobs_failed", "Tries that failed.", (*_JOB, "reason"), registry=r)
        self.retried = Counter("jobq_jobs_retried", "Failed tries followed by another try.", _JOB, registry=r)
        self.dead_lettered = Counter("jobq_jobs_dead_lettered", "Jobs moved to the dead letters.", _JOB, registry=r)
        self.aborted = Counter("jobq_jobs_aborted", "Jobs aborted on request.", _JOB, registry=r)
        self.interrupted = Counter("jobq_jobs_interrupted", "Tries cut short by shutdown.", _JOB, registry=r)
        self.deferred = Counter("jobq_jobs_deferred", "Starts given back for want of a slot.", _JOB, registry=r)
        self.duration = Histogram(
            "jobq_job_duration_seconds", "Duration of tries.", (*_JOB, "outcome"), buckets=DURATION_BUCKETS, registry=r
        )
        self.pickup = Histogram(
            "jobq_job_pickup_latency_seconds",
            "Wait between due and started.",
            _JOB,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ready = Gauge("jobq_queue_ready_jobs", "Due jobs waiting for a worker.", ("queue",), registry=r)
        self.deferred_jobs = Gauge("jobq_queue_deferred_jobs", "Jobs not due yet.", ("queue",), registry=r)
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
            Outcome.SUCCEEDED: self.succeeded,
            Outcome.RETRYING: self.retried,
            Outcome.DEAD_LETTERED: self.dead_lettered,
            Outcome.ABORTED: self.aborted,
            Outcome.INTERRUPTED: self.interrupted,
            Outcome.DEFERRED: self.deferred,
        }
        self._buckets = {self.duration: DURATION_BUCKETS, self.pickup: LATENCY_BUCKETS}
        # A try's tallies by what it was: one dict look-up a try instead of one per metric.
        self._started: dict[tuple[str, str], tuple[_CounterTally, _HistogramTally | None]] = {}
        self._ended: dict[
            tuple[str, str, Outcome, Outcome | None], tuple[tuple[_CounterTally, ...], _HistogramTally | None]
        ] = {}

    def _count(self, metric: Counter, *labels: str) -> _CounterTally:
        key = (metric, *labels)
        tally = self._tallies.get(key)
        if tally is None:  # the child now, as before: its series (and _created) appear with the first count
            tally = self._tallies[key] = _CounterTally(metric.labels(*labels))
        return tally  # type: ignore[return-value]  # a Counter's key holds a _CounterTally

    def _observe(self, metric: Histogram, *labels: str) -> _HistogramTally:
        key = (metric, *labels)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _HistogramTally(metric.labels(*labels), self._buckets[metric])
        return tally  # type: ignore[return-value]  # a Histogram's key holds a _HistogramTally

    def _push(self) -> None:
        for tally in list(self._tallies.values()):
            tally.push()

    def try_started(self, queue: str, task: str, pickup_s: float | None) -> None:
        """A try began, ``pickup_s`` after the job was due."""
        tallies = self._started.get((queue, task))
        if tallies is None:
            tallies = self._started[queue, task] = (self._count(self.started, queue, task), None)
        tallies[0].total += 1
        if pickup_s is not None:
            pickup = tallies[1]
            if pickup is None:  # created on the first pickup, as the child was before
                pickup = self._observe(self.pickup, queue, task)
                self._started[queue, task] = (tallies[0], pickup)
            pickup.observe(max(0.0, pickup_s))

    def try_ended(self, queue: str, task: str, outcome: Outcome, failure: Outcome | None, duration_s: float) -> None:
        """A try ended with ``outcome`` (and ``failure``, FAILED or TIMED_OUT, when it failed)."""
        key = (queue, task, outcome, failure)
        tallies = self._ended.get(key)
        if tallies is None:
            tallies = self._ended[key] = self._end_tallies(queue, task, outcome, failure)
        counts, duration = tallies
        for tally in counts:
            tally.total += 1
        if duration is not None:
            duration.observe(max(0.0, duration_s))

    def _end_tallies(
        self, queue: str, task: str, outcome: Outcome, failure: Outcome | None
    ) -> tuple[tuple[_CounterTally, ...], _HistogramTally | None]:
        """What a try ending so counts: its counters, and its duration histogram (none when deferred)."""
        counts = []
        if failure is not None:
            counts.append(self._count(self.failed, queue, task, "timeout" if failure is Outcome.TIMED_OUT else "error"))
        counter = self._by_outcome.get(outcome)
        if counter is not None:
            counts.append(self._count(counter, queue, task))
        duration = None if outcome is Outcome.DEFERRED else self._observe(self.duration, queue, task, outcome.value)
        return tuple(counts), duration

    def job_enqueued(self, queue: str, task: str) -> None:
        """A producer in this process created a job."""
        self._count(self.enqueued, queue, task).total += 1

    def queue_observed(self, stats: QueueSnapshot) -> None:
        """Set the queue gauges from a fresh snapshot."""
        q = stats.queue
        self.ready.labels(q).set(stats.ready)
        self.deferred_jobs.labels(q).set(stats.deferred)
        self.in_progress.labels(q).set(stats.running)
        self.oldest_age.labels(q).set(stats.oldest_ready_age_s)
        self.dead_letters.labels(q).set(stats.dead_letters)
        self.workers_up.labels(q).set(stats.workers)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
