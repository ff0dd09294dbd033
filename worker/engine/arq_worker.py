"""The arq ``Worker`` subclass jobq runs (built from the settings by :mod:`worker.engine.assembly`).

arq is pinned exactly; every override lives here with a one-line reason, so an arq upgrade has one file to re-check.
arq still provides the worker's shape (construction, signal wiring; jobq overrides close); jobq replaces its polling
loop (leased claims with fencing tokens, a loop that outlives Redis outages, cron, graceful drain; when it claims is
:mod:`worker.engine.pacing`) and its job runner (:class:`~worker.engine.executor.JobExecutor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from signal import Signals
from typing import TYPE_CHECKING, Any

from arq.worker import Worker
from redis.exceptions import RedisError, ResponseError

from worker.client.stats import gate_waits, queue_stats, waiting_by_limit
from worker.engine.duties import every
from worker.engine.executor import JobExecutor
from worker.engine.health import ArqCounter, Heartbeat, WorkerState
from worker.engine.leases import Leases
from worker.engine.marker import MarkerWatch
from worker.engine.pacing import ClaimPacing
from worker.engine.probes import start_probes
from worker.engine.refusal import Refusal
from worker.engine.running import RunningTries
from worker.engine.scheduler import CronScheduler
from worker.engine.slots import OwnSlots, SlotBroker, SlotShare
from worker.engine.stopping import Stopping, give_back_all
from worker.engine.try_handle import CancelReason, TryHandle
from worker.engine.wakeup import WakeUp
from worker.observability.metrics import Metrics
from worker.process.forced_exit import LAST_CHANCE_S, ForcedExit
from worker.protocol.connection import close_redis
from worker.protocol.permissions import redis_user
from worker.protocol.redis_retry import TRANSIENT
from worker.settings import JobqSettings
from worker.states import TryTally
from worker.taskdef.services import resources_from_modules

if TYPE_CHECKING:
    from aiohttp.web import AppRunner

logger = logging.getLogger("jobq.worker")

RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 5.0


class JobqWorker(Worker):
    """arq's worker running jobq's loop: leased claims, fenced outcomes, outage-proof polling, drain."""

    jobs_complete = ArqCounter(TryTally.SUCCEEDED)
    jobs_failed = ArqCounter(TryTally.FAILED)
    jobs_retried = ArqCounter(TryTally.RETRIED)

    def __init__(
        self,
        *,
        executor: JobExecutor,
        leases: Leases,
        heartbeat: Heartbeat,
        state: WorkerState,
        scheduler: CronScheduler | None,
        settings: JobqSettings,
        clock: Callable[[], float] = time.time,
        **arq_kwargs: Any,
    ) -> None:
        super().__init__(**arq_kwargs)
        # Whether the connection is open, known here: arq keeps its own reference in a private field.
        self._redis_open = arq_kwargs.get("redis_pool") is not None
        self.executor = executor
        self.metrics = executor.metrics or Metrics()
        self.leases = leases
        self.heartbeat = heartbeat
        self.state = state
        self.scheduler = scheduler
        self._settings = settings
        self._clock = clock
        self.refusal = Refusal(user=redis_user(settings), queue=self.queue_name)  # a refused permission: exit 2
        self._probes: AppRunner | None = None
        self.wakeup = WakeUp()
        #: The blocking call on the queue's marker: one ready job wakes one idle worker of the fleet.
        self.marker = MarkerWatch(
            self.pool, self.queue_name, self.wakeup, block_s=max(1.0, 2 * settings.poll_delay_s), clock=clock
        )
        #: The running tries, each owned by its handle (the only way the worker cancels one).
        self.tries = RunningTries(self.tasks, leases, wake=self._slot_freed, abort_check_s=settings.abort_check_s)
        #: How many jobs the loop may claim: its own JOBQ_MAX_JOBS slots, or its lane's share (see join()).
        self.slots: SlotShare = OwnSlots(self._slots_taken, self.max_jobs)
        # What the second and third signals do; a worker embedded in another program never ends its process.
        forced_exit = ForcedExit(
            settings.cancel_grace_s + LAST_CHANCE_S, owns_process=arq_kwargs.get("handle_signals", True)
        )
        self.stopping = Stopping(self.tries, state, forced_exit, grace_s=settings.shutdown_grace_s)
        #: When a round claims and how long the loop sleeps (marker signals, due times, the fallback poll).
        self.pacing = ClaimPacing(self.marker, self.poll_delay_s, clock=clock)
        self._scan = max(100, 5 * self.max_jobs)
        #: The other lanes of a process serving several queues, whose gauges this one's /metrics shows.
        self.also_observed: list[JobqWorker] = []
        #: Whether close() closes the Redis pool (lanes of one process share it: the group closes it last).
        self.owns_pool = True

    def join(self, broker: SlotBroker) -> None:
        """Serve this worker's queue as the next lane of a process that serves several (see worker.engine.slots)."""
        self.slots = broker.join(self._slots_taken, self.wakeup.set)

    def _slots_taken(self) -> int:
        return self.max_jobs - self.tries.free_slots(self.max_jobs)

    def _slot_freed(self) -> None:
        self.wakeup.set()
        self.slots.freed()

    @property
    def forced_exit(self) -> ForcedExit:
        """What the second and third stop signals do (see :mod:`worker.process.forced_exit`)."""
        return self.stopping.forced_exit

    @forced_exit.setter
    def forced_exit(self, forced_exit: ForcedExit) -> None:
        self.stopping.forced_exit = forced_exit

    # --- the loop -------------------------------------------------------------------------

    async def main(self) -> None:
        # Override: jobq's loop (leased claims, abort checks, cron) that outlives Redis outages and drains.
        if not self._redis_open:
            raise RuntimeError("JobqWorker needs a redis_pool; build it with build_worker()")
        logger.info(
            "worker %s starting on queue %r with %d tasks: %s",
            self.state.worker_id, self.queue_name, len(self.functions), ", ".join(sorted(self.functions)),
        )  # fmt: skip
        self.ctx["redis"] = self.pool
        if self.executor.services is not None:
            await self.executor.services.resources.open_all(resources_from_modules(self._settings.task_modules))
        if port := self._settings.http_port:
            stale_s = 3 * self._settings.health_interval_s
            self._probes = await start_probes(
                self.state, port, redis_stale_after_s=stale_s, metrics=self.metrics, refresh=self.refresh_metrics
            )
        background = [
            self._every(self.leases.lease_ms / 3000, self.renew_leases, "jobq-leases"),
            self._every(self.heartbeat.interval_s, self._beat, "jobq-heartbeat"),
        ]
        if not self.burst:  # a burst claims every round until the queue is empty: nothing to block on
            background.append(asyncio.create_task(self.marker.run(), name="jobq-marker"))
        # Start-up objects (modules, settings, registry) live as long as the process: keeping them out of
        # the collector's generations makes its full passes over the jobs' short-lived objects cheap.
        gc.freeze()
        try:
            await self._loop()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)

    async def _loop(self) -> None:
        backoff = RECONNECT_MIN_S
        while True:
            self.state.last_loop = time.monotonic()
            self._reap()
            self.refusal.raise_if_refused()
            if self.stopping.requested and not self.tries:
                return
            # Cleared before the claim: a signal sent while claiming makes the wait below return at once.
            self.wakeup.clear()
            try:
                await self.run_cycle(when_needed=True)
            except TRANSIENT as exc:
                self.pacing.round_failed()
                self.state.redis_failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            except ResponseError as exc:
                if (refused := self.refusal.of(exc)) is not None:
                    raise refused from exc
                # Refused by Redis (out of memory, a key of the wrong type): the loop goes on, other jobs too.
                self.pacing.round_failed()
                logger.error("a claim round failed (%s: %s); again in %.1fs", type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            self.state.redis_ok()
            backoff = RECONNECT_MIN_S
            if self.burst and not self.tasks and await self.pool.zcard(self.queue_name) == 0:
                return
            claiming = not self.stopping.requested and self.slots.free() > 0
            self.marker.accept(claiming)
            await self.wakeup.wait(self.pacing.idle_wait_s(claiming, self.tries.abort_check_in_s(time.monotonic())))

    async def run_cycle(self, *, when_needed: bool = False) -> int:
        """One round of the loop: claim due jobs into free slots, check aborts, enqueue cron ticks.

        ``when_needed``: claim only when something says there is work (:meth:`ClaimPacing.needed`); the live
        loop passes it, so a finished job or an abort check costs no claim. Without it the round always claims.
        """
        claimed = 0
        if not self.stopping.requested:
            if self.scheduler is not None:
                await self.scheduler.enqueue_due()
            local, limits = self.executor.local_slots, self.executor.claim_limits  # what the claim holds back
            if limits.any:
                await asyncio.sleep(0)  # the tries started last round take their slots first: the claim reads them
            free = self.slots.free()
            now_ms = self.pacing.now_ms()
            if free > 0 and (not when_needed or local.owed or self.slots.must_check() or self.pacing.needed(now_ms)):
                batch = await self.leases.claim_batch(now_ms, free, self._scan, limits)
                filled = len(batch.claims) + sum(sum(counts) for counts in batch.parked.values()) >= free
                self.pacing.claimed(filled=filled, next_due_ms=batch.next_due_ms, paused=batch.paused)
                self.slots.claimed(hungry=filled and not batch.paused)
                self.executor.count_held_back(batch.parked)
                for claim in batch.claims:
                    self.tries.start(claim, self.run_claimed)
                    claimed += 1
            elif free <= 0:
                if local.owed:
                    await self.executor.put_back_owed()  # no claim soon here: the fleet's other workers take them
                if self.marker.due(now_ms):
                    await self.marker.hand_back()  # full when the awaited time came: another worker takes it
        else:
            await self.executor.put_back_owed()  # stopping: the jobs its freed slots owe go back to the fleet too
            await self.marker.hand_back()  # stopping: what this worker waited for goes back to the fleet
        self.state.running = len(self.tries)
        await self.tries.check_aborts_if_due(self.pool, self.queue_name)
        return claimed

    def _reap(self) -> None:
        for job_id, error in self.tries.reap():
            logger.error("job %s ended with an unexpected error", job_id, exc_info=error)
            self.refusal.note(error)

    async def run_due_jobs(self) -> int:
        """Claim every job due now, run them to their end, and return how many were started.

        The one-step seam for tests and tools: no loop, no signals, no heartbeat.
        """
        self.ctx["redis"] = self.pool
        before = set(self.tasks)
        await self.run_cycle()
        started = len(set(self.tasks) - before)
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self._reap()
        return started

    async def run_claimed(self, handle: TryHandle) -> None:
        """Run one claimed try to its end and count its outcome (once: arq's counters read that count)."""
        handle.begin()
        try:
            outcome = await self.executor.run(handle)
        finally:
            self.leases.release(handle.job_id)
        self.state.count(outcome)

    async def run_job(self, job_id: str, score: int) -> None:
        # Override: jobq runs jobs through run_claimed(); arq's runner must never run one by accident.
        raise RuntimeError("JobqWorker runs jobs with run_claimed(); arq's run_job is not used")

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # Override: jobq claims jobs with leases (Leases.claim); arq's WATCH/MULTI claim is not used.
        raise RuntimeError("JobqWorker claims jobs with Leases.claim(); arq's start_jobs is not used")

    # --- background duties ------------------------------------------------------------------

    def _every(self, interval_s: float, duty: Callable[[], Any], name: str) -> asyncio.Task[None]:
        return asyncio.create_task(every(interval_s, duty, self.state, self._stops_on), name=name)

    def _stops_on(self, exc: ResponseError) -> bool:
        refused = self.refusal.note(exc)
        self.wakeup.set()
        return refused

    async def renew_leases(self) -> None:
        """Renew the leases of the running jobs once, stopping the tries whose lease another worker has."""
        await self.leases.renew(self._lease_lost)

    def _lease_lost(self, job_id: str) -> None:
        # Another worker may run the job now: stop this try so its effects overlap as little as possible.
        self.tries.cancel(job_id, CancelReason.LEASE_LOST)

    async def refresh_metrics(self) -> None:
        """Bring the gauges up to date (called before each ``/metrics`` scrape), this worker's and those of
        the other lanes of its process (:attr:`also_observed`)."""
        for lane in (self, *self.also_observed):
            worker = lane.state.worker_id
            self.metrics.busy.labels(lane.queue_name, worker).set(len(lane.tasks))
            self.metrics.connected.labels(lane.queue_name, worker).set(1 if lane.state.connected else 0)
            self.metrics.queue_observed(await queue_stats(self.pool, lane.queue_name, now=self._clock()))
            self.metrics.waiting_observed(
                lane.queue_name, waiting_by_limit(await gate_waits(self.pool, lane.queue_name))
            )

    async def _beat(self) -> None:
        self.state.running = len(self.tasks)
        await self.heartbeat.beat()

    # --- abort and stop ----------------------------------------------------------------------

    async def check_aborts(self) -> list[str]:
        """Cancel the running tries whose abort was requested; return their job ids (see RunningTries)."""
        return await self.tries.check_aborts(self.pool, self.queue_name)

    def handle_sig(self, signum: Signals) -> None:
        # Override: stop claiming, let running jobs finish within the grace period, then return the rest
        # (uncharged); a second signal returns them at once and bounds the rest of the stop, a third ends
        # the process (worker.engine.stopping). arq cancels everything at the first signal, and nothing after.
        self.allow_pick_jobs = False
        self.wakeup.set()
        self.stopping.signal(Signals(signum))

    async def close(self) -> None:
        # Override: arq calls the deprecated Redis.close(), deletes a health key shared by all workers and
        # lets one failed job task abort the shutdown; jobq removes only this worker's own heartbeat.
        await give_back_all(self.tries, self.executor, self.leases)
        if self._probes is not None:
            await self._probes.cleanup()
        if self.executor.services is not None:
            await self.executor.services.resources.close()
        if not self._redis_open:
            return
        await self.executor.put_back_owed()  # the last tries' freed slots: their waiting jobs go to the fleet
        with contextlib.suppress(RedisError, OSError):
            await self.heartbeat.remove()
        if self.owns_pool:
            await close_redis(self.pool)
        self._redis_open = False
