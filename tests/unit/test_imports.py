"""What importing jobq loads: a worker does not pay for the SDKs and UI libraries it is not configured to use.

Each check runs in a fresh interpreter, so the modules other tests imported do not count.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: What ``jobq worker`` imports before it connects: the CLI, the runner, the event loop, logging and Sentry set-up.
WORKER_IMPORTS = (
    "import worker.cli, worker.engine.runner, worker.process.eventloop, worker.observability.logs, tests.sample_tasks"
)


def loaded_modules(code: str) -> set[str]:
    """Every module name in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    report = "import sys\nprint('loaded:', *sorted(sys.modules), file=sys.stderr)\n"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + "\n" + report],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("loaded: ")]
    return set(line.split()[1:])


def loaded_packages(code: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    return {name.split(".")[0] for name in loaded_modules(code)}


def test_import_worker_loads_no_submodule_until_a_name_is_used() -> None:
    loaded = loaded_packages(
        """
        import sys
        import worker
        assert [m for m in sys.modules if m.startswith("worker.")] == [], "import worker imported submodules"
        worker.JobqSettings
        """
    )
    assert {"arq", "redis", "prometheus_client"}.isdisjoint(loaded)  # settings need pydantic only


@pytest.mark.parametrize("package", ["rich", "aiohttp", "sentry_sdk"])
def test_the_worker_command_does_not_import(package: str) -> None:
    assert package not in loaded_packages(WORKER_IMPORTS)


def test_the_cli_imports_rich_only_for_a_command_that_prints() -> None:
    loaded = loaded_packages(
        """
        from worker.cli import main
        try:
            main(["settings", "--markdown"])  # typer.echo only
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        """
    )
    assert "rich" not in loaded


def test_the_producer_package_loads_nothing_of_the_layers_above_it() -> None:
    loaded = loaded_modules("import worker.client, worker.client.producer, worker.client.sync, worker.client.handle")
    above = ("worker.engine", "worker.cli", "worker.http", "worker.demo")
    assert "worker.client.producer" in loaded  # the check looks at the right modules
    assert [m for m in loaded if m in above or m.startswith(tuple(p + "." for p in above))] == []


def test_a_task_module_declaring_tasks_loads_no_redis_or_arq() -> None:
    loaded = loaded_packages(
        """
        from worker import JobContext, Limit, Schedule, resource, task
        """
    )
    assert "worker" in loaded
    assert {"redis", "arq", "prometheus_client", "aiohttp"}.isdisjoint(loaded), loaded
