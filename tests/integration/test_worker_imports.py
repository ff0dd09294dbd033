"""A real ``jobq worker`` loads aiohttp and sentry_sdk only when configured to use them, and never rich."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.integration.harness import ROOT, subprocess_env
from worker.process.embedded import free_port
from worker.settings import JobqSettings

# The console script's entry point, plus a report of the loaded top-level packages when the process exits.
BURST_WORKER = textwrap.dedent(
    """
    import atexit, sys
    atexit.register(lambda: print("loaded:", *sorted({m.split(".")[0] for m in sys.modules}), file=sys.stderr))
    from worker.cli import main
    main(["worker", "--burst"])
    """
)


def burst_worker_packages(settings: JobqSettings, **env: str) -> set[str]:
    """Run a burst worker on the (empty) queue of ``settings``; the top-level packages it had loaded."""
    done = subprocess.run(
        [sys.executable, "-c", BURST_WORKER],
        cwd=ROOT, env=subprocess_env(settings, **env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("loaded: ")]
    return set(line.split()[1:])


@pytest.mark.parametrize("package", ["rich", "aiohttp", "sentry_sdk"])
def test_an_unconfigured_worker_does_not_load(settings: JobqSettings, package: str) -> None:
    assert package not in burst_worker_packages(settings)


def test_a_worker_with_an_http_port_serves_its_probes_with_aiohttp(settings: JobqSettings) -> None:
    assert "aiohttp" in burst_worker_packages(settings, JOBQ_HTTP_PORT=str(free_port()))
