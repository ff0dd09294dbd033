"""Child processes jobq starts (embedded Redis, demo workers): stopped by their pid, never left behind."""

from __future__ import annotations

import signal
import subprocess

STOP_TIMEOUT_S = 10.0


def stop_process(proc: subprocess.Popen[bytes], *, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Send SIGTERM, wait up to ``timeout_s``, then SIGKILL; return the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
