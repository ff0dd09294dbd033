"""A process serving several queues (``JOBQ_QUEUES``): one worker per queue, its *lanes*, run side by side.

The lanes share the Redis pool, the metrics and the process's slots (:mod:`worker.engine.slots`). Each
stop signal goes to every lane, so they drain together; the first lane's forced exit (the second and
third signals) stands for the process. When one lane ends on an error (a refused permission), the others
are stopped as by a signal and the error is raised once they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from worker.engine.arq_worker import JobqWorker
from worker.process.eventloop import STOP_SIGNALS
from worker.process.forced_exit import LAST_CHANCE_S, ForcedExit

logger = logging.getLogger("jobq.worker")


class WorkerGroup:
    """The lanes of one process, run and stopped together."""

    def __init__(self, lanes: list[JobqWorker], *, cancel_grace_s: float | None = None) -> None:
        self.lanes = lanes
        if cancel_grace_s is not None:  # lanes built without signal handlers: the first one's forced exit counts
            lanes[0].forced_exit = ForcedExit(cancel_grace_s + LAST_CHANCE_S, owns_process=True)

    @classmethod
    def of_one(cls, worker: JobqWorker) -> WorkerGroup:
        """A process serving one queue: the worker as it was built (its own signal handlers)."""
        return cls([worker])

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT go to every lane (each drains; the first one's forced exit ends the process)."""
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, ValueError, RuntimeError):  # not the main thread, Windows
                loop.add_signal_handler(signum, self.handle_sig, signum)

    def handle_sig(self, signum: signal.Signals) -> None:
        """A stop signal, for every lane."""
        for lane in self.lanes:
            lane.handle_sig(signum)

    async def run(self) -> None:
        """Run every lane until each has stopped; an error of one stops the others, then is raised."""
        runs = [asyncio.create_task(lane.async_run(), name=f"jobq-lane-{lane.queue_name}") for lane in self.lanes]
        try:
            done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            raise
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if failed:
            logger.error("lane %s stopped on an error; stopping the other lanes", failed[0].get_name())
            for lane in self.lanes:
                if not lane.stopping.requested:
                    lane.handle_sig(signal.SIGTERM)
        await asyncio.gather(*runs, return_exceptions=True)
        if failed:
            raise failed[0].exception()  # type: ignore[misc]  # checked above: not None

    async def close(self) -> None:
        """Close the lanes, the first (which closes the shared pool) last."""
        for lane in reversed(self.lanes):
            await lane.close()

    def tallies(self) -> tuple[int, int, int]:
        """Jobs complete, failed and retried, over every lane."""
        lanes = self.lanes
        return (
            sum(lane.jobs_complete for lane in lanes),
            sum(lane.jobs_failed for lane in lanes),
            sum(lane.jobs_retried for lane in lanes),
        )
