"""``jobq worker --processes N``: N worker processes under one supervisor.

The supervisor restarts a worker that dies (waiting longer each time one keeps dying quickly),
passes SIGTERM/SIGINT on to every worker so each drains as usual, and exits 0 once all have
stopped. A second signal is passed on too (the workers then stop at once). A worker that exits 2
found its configuration wrong (settings, task modules, Redis permissions): restarting cannot help,
so the supervisor stops the others and exits 2 too. Worker ``i`` serves its HTTP probes on
``JOBQ_HTTP_PORT + i`` when that setting is on.

Each worker learns its place from the supervisor (:func:`supervised_slot`) and writes it in its
heartbeat, so ``jobq check`` knows how many workers the supervisor runs and which one is missing.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

logger = logging.getLogger("jobq.supervisor")

#: A worker that lived shorter than this counts as crashing; its restarts back off.
QUICK_DEATH_S = 10.0
RESTART_MAX_DELAY_S = 30.0
TICK_S = 0.2
#: The exit code of a worker whose configuration is wrong (see worker/cli/app.py): never restarted.
BAD_CONFIGURATION = 2
#: How the supervisor tells a worker its place: "<index> <count> <supervisor id>" (not a setting).
SLOT_ENV = "_JOBQ_SLOT"


@dataclass(frozen=True, slots=True)
class Slot:
    """A supervised worker's place: worker ``index`` of ``count`` under the supervisor ``supervisor`` (host:pid)."""

    supervisor: str
    index: int
    count: int


def supervised_slot() -> Slot | None:
    """This process's slot when a supervisor started it, else None."""
    parts = os.environ.get(SLOT_ENV, "").split(" ", 2)
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return Slot(parts[2], int(parts[0]), int(parts[1]))


@dataclass
class Child:
    """One supervised worker process."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_delay_s: float = 1.0
    restart_at: float = field(default=0.0)


class Supervisor:
    """Keeps ``count`` worker processes running until told to stop."""

    def __init__(
        self, count: int, *, argv: list[str] | None = None, base_port: int = 0, env: dict[str, str] | None = None
    ) -> None:
        # -P and the launcher: neither the folder it runs in nor PYTHONPATH can put a user's worker.py in place
        # of jobq's package (the child appends the folder itself, as this process did: JOBQ_IMPORT_CWD).
        self._argv = argv or [sys.executable, "-P", "-m", "jobq_launch", "worker"]
        self._base_port = base_port
        self._env = env or {}  # set for every child on top of this process's environment
        self.children = [Child(i) for i in range(count)]
        self.supervisor_id = f"{socket.gethostname()}:{os.getpid()}"
        self._signals: list[int] = []
        self._exit_code = 0

    def _spawn(self, child: Child) -> None:
        env = dict(os.environ) | self._env
        if self._base_port:
            env["JOBQ_HTTP_PORT"] = str(self._base_port + child.index)
        env[SLOT_ENV] = f"{child.index} {len(self.children)} {self.supervisor_id}"
        child.proc = subprocess.Popen(self._argv, env=env)  # noqa: S603 - our own interpreter and module
        child.started_at = time.monotonic()
        logger.info("worker %d started (pid %d)", child.index, child.proc.pid)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.append(signum)

    def run(self) -> int:
        """Supervise until a signal arrives (or a worker exits 2) and every worker has stopped; return the exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for child in self.children:
            self._spawn(child)
        forwarded = 0
        while True:
            if len(self._signals) > forwarded:
                for received in self._signals[forwarded:]:
                    self._forward(received)
                forwarded = len(self._signals)
            if self._signals:
                if all(c.proc is None or c.proc.poll() is not None for c in self.children):
                    logger.info("all workers stopped")
                    return self._exit_code
            else:
                self._restart_dead()
            time.sleep(TICK_S)

    def _forward(self, signum: int) -> None:
        logger.info("passing %s on to %d workers", signal.Signals(signum).name, len(self.children))
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signum)

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            if child.proc.returncode == BAD_CONFIGURATION:
                logger.error(
                    "worker %d (pid %d) exited %d: its configuration is wrong (see its error above); not restarting "
                    "it, stopping the other workers", child.index, child.proc.pid, BAD_CONFIGURATION,
                )  # fmt: skip
                self._exit_code = BAD_CONFIGURATION
                self._signals.append(signal.SIGTERM)
                return
            if child.restart_at == 0.0:
                lived = now - child.started_at
                child.restart_delay_s = (
                    min(child.restart_delay_s * 2, RESTART_MAX_DELAY_S) if lived < QUICK_DEATH_S else 1.0
                )
                child.restart_at = now + child.restart_delay_s
                logger.warning(
                    "worker %d (pid %d) exited with %s after %.1fs; restarting in %.0fs",
                    child.index, child.proc.pid, child.proc.returncode, lived, child.restart_delay_s,
                )  # fmt: skip
            elif now >= child.restart_at:
                child.restart_at = 0.0
                self._spawn(child)
