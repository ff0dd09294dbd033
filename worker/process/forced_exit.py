"""The stop a worker is asked for twice ends for sure: a hard exit when it is stuck, or on a third signal.

The first SIGTERM/SIGINT drains (see :meth:`worker.engine.arq_worker.JobqWorker.handle_sig`). The second cancels the
running jobs and gives the rest of the shutdown ``last_chance_s``; a daemon thread (not the event loop,
which may be the thing that is stuck) then logs one line and ends the process with ``128 + signal``.
A third signal does the same at once. Jobs a hard exit leaves behind run again when their leases expire.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from signal import Signals

logger = logging.getLogger("jobq.worker")

#: Seconds the shutdown gets after the second signal, on top of ``JOBQ_CANCEL_GRACE_S`` (the cancelled
#: jobs' own time to stop): enough to write their ends and give their leases back to a reachable Redis.
LAST_CHANCE_S = 10.0
#: How long the final log line may take (a stuck stderr must not stop the exit).
LOG_WAIT_S = 1.0


def _daemon_timer(delay_s: float, fn: Callable[[], None]) -> None:
    timer = threading.Timer(delay_s, fn)
    timer.daemon = True  # never what keeps the process alive
    timer.name = "jobq-forced-exit"
    timer.start()


class ForcedExit:
    """Counts the stop signals after the first: the second arms the watchdog, the third exits at once."""

    def __init__(
        self,
        last_chance_s: float,
        *,
        owns_process: bool = True,
        exit_process: Callable[[int], object] = os._exit,
        start_timer: Callable[[float, Callable[[], None]], object] = _daemon_timer,
    ) -> None:
        self.last_chance_s = last_chance_s
        self.owns_process = owns_process
        self._exit = exit_process
        self._start_timer = start_timer
        self.armed = False

    def again(self, sig: Signals) -> None:
        """A stop signal after the first one."""
        if not self.owns_process:
            return  # a worker embedded in another program (handle_signals=False) never ends its process
        if not self.armed:
            self.armed = True
            self._start_timer(
                self.last_chance_s,
                lambda: self.exit_now(sig, f"still stopping {self.last_chance_s:.0f}s after {sig.name} again"),
            )
            return
        self.exit_now(sig, f"{sig.name} a third time")

    def exit_now(self, sig: Signals, why: str) -> None:
        """Log why, then end the process without finishing the shutdown (exit code ``128 + sig``)."""
        code = 128 + int(sig)
        message = (
            f"{why}: exiting now (exit {code}) without finishing the shutdown; "
            "jobs still held run again when their leases expire"
        )
        # Logged from a thread of its own: outside the event loop the line is written at once (with any
        # buffered lines), and a stuck stderr costs at most LOG_WAIT_S.
        writer = threading.Thread(target=logger.error, args=(message,), name="jobq-last-line", daemon=True)
        writer.start()
        writer.join(LOG_WAIT_S)
        self._exit(code)
