"""How a worker stops: drain on the first signal, stop now on the second, exit on the third.

The first signal stops claiming and lets the running tries finish within ``JOBQ_SHUTDOWN_GRACE_S``;
the tries still running then are cancelled for a shutdown and go back to the queue, uncharged. A
second signal cancels them at once and arms the watchdog (:mod:`worker.process.forced_exit`); a
third ends the process. At the end, jobs claimed but never begun are given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from signal import Signals

from worker.engine.executor import JobExecutor
from worker.engine.health import WorkerState
from worker.engine.leases import Leases
from worker.engine.running import RunningTries
from worker.engine.try_handle import CancelReason
from worker.process.forced_exit import ForcedExit

logger = logging.getLogger("jobq.worker")


class Stopping:
    """The worker's stop, from the first signal to the last job given back."""

    def __init__(self, tries: RunningTries, state: WorkerState, forced_exit: ForcedExit, *, grace_s: float) -> None:
        self.requested = False  #: a stop signal came: nothing new is claimed
        self._tries = tries
        self._state = state
        self.forced_exit = forced_exit  #: what the second and third signals do
        self._grace_s = grace_s
        self._drain: asyncio.Task[None] | None = None

    def signal(self, sig: Signals) -> None:
        """A stop signal: the first drains, the second stops now, the third exits."""
        if self.requested:
            if not self.forced_exit.armed:
                logger.warning(
                    "%s again: stopping now; %d running jobs go back to the queue; exiting hard in %.0fs if not"
                    " stopped by then, or at once on a third signal",
                    sig.name, len(self._tries), self.forced_exit.last_chance_s,
                )  # fmt: skip
                self._tries.cancel_all(CancelReason.SHUTDOWN)
            self.forced_exit.again(sig)  # the second arms the watchdog, the third exits
            return
        self.requested = True
        self._state.draining = True
        logger.info(
            "%s: no new jobs; up to %.0fs for %d running jobs to finish", sig.name, self._grace_s, len(self._tries)
        )
        self._drain = asyncio.get_running_loop().create_task(self._drain_then_cancel(), name="jobq-drain")

    async def _drain_then_cancel(self) -> None:
        running = self._tries.tasks()
        if running:
            await asyncio.wait(running, timeout=self._grace_s)
        if self._tries.tasks():
            cancelled = self._tries.cancel_all(CancelReason.SHUTDOWN)
            logger.info("grace period over: %d jobs go back to the queue, uncharged", cancelled)


async def give_back_all(tries: RunningTries, executor: JobExecutor, leases: Leases) -> None:
    """Stop every try now (a shutdown), write the ends already decided, and give back the jobs claimed but
    never begun (their start is not charged)."""
    tries.cancel_all(CancelReason.SHUTDOWN)
    await asyncio.gather(*tries.tasks(), return_exceptions=True)
    with contextlib.suppress(Exception):
        await executor.flush()
    with contextlib.suppress(Exception):
        await leases.settle()  # a claim whose reply was lost: its jobs are given back below
    for job_id, token in list(leases.held.items()):  # claimed, but their task never began
        with contextlib.suppress(Exception):
            await executor.give_back(job_id, token)
