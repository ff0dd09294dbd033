"""Task modules named on the command line and loaded from the folder a command runs in (the development venv's
``jobq``; tests/integration/test_wheel_project.py does the same from a built wheel)."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.harness import JOBQ, WorkerProcess
from worker.settings import JobqSettings

TASK_MODULE = textwrap.dedent(
    """
    from pydantic import BaseModel

    from worker import JobContext, task


    class In(BaseModel):
        n: int


    @task
    async def {name}(ctx: JobContext, payload: In) -> int:
        return payload.n + 1
    """
)


def project_env(settings: JobqSettings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBQ_", "PYTHONPATH"))}
    env.update(JOBQ_REDIS_URL=settings.redis_url, JOBQ_QUEUE_NAME=settings.queue_name, **extra)
    return env


def jobq(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOBQ, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    (folder / "tasks").mkdir(parents=True)
    (folder / "tasks" / "__init__.py").write_text("")
    (folder / "tasks" / "billing.py").write_text(TASK_MODULE.format(name="bill"))
    (folder / "jobs.py").write_text(TASK_MODULE.format(name="bump"))
    (folder / "worker.py").write_text('raise SystemExit("the user\'s own worker.py was imported")\n')
    return folder


def test_no_task_module_named_anywhere_exits_2_saying_how_to_name_one(project: Path, settings: JobqSettings) -> None:
    refused = jobq(project, project_env(settings), "tasks")
    assert refused.returncode == 2
    assert "no task modules: name them (jobq worker myapp.jobs) or set JOBQ_TASK_MODULES" in refused.stderr


def test_the_users_tasks_package_loads_with_its_submodules(project: Path, settings: JobqSettings) -> None:
    env = project_env(settings)
    for modules in (["tasks"], ["tasks.billing"], ["tasks", "tasks.billing"]):
        listed = jobq(project, env, "tasks", *modules)
        assert listed.returncode == 0, listed.stderr
        assert "bill" in listed.stdout
    mixed = jobq(project, env, "tasks", "tasks", "tasks.webhooks")
    assert mixed.returncode == 2
    assert str(project / "tasks") in mixed.stderr
    assert "tasks.webhooks" in mixed.stderr


def test_the_environment_names_modules_when_the_command_line_does_not(project: Path, settings: JobqSettings) -> None:
    listed = jobq(project, project_env(settings, JOBQ_TASK_MODULES="jobs"), "tasks")
    assert listed.returncode == 0, listed.stderr
    assert "bump" in listed.stdout
    off = jobq(project, project_env(settings, JOBQ_TASK_MODULES="jobs", JOBQ_IMPORT_CWD="false"), "tasks")
    assert off.returncode == 2
    assert "cannot import task module 'jobs'" in off.stderr


def test_supervised_workers_load_jobq_and_the_projects_module_with_a_users_worker_py_on_pythonpath(
    project: Path, settings: JobqSettings, tmp_path: Path
) -> None:
    env = project_env(settings, PYTHONPATH=str(project))
    proc = WorkerProcess([JOBQ, "worker", "jobs", "--processes", "2"], env, tmp_path / "sup.log", cwd=project)
    try:
        deadline = time.monotonic() + 60
        while True:
            checked = jobq(project, env, "check")
            if checked.returncode == 0 and checked.stdout.count("healthy") >= 2:
                break
            assert proc.proc.poll() is None, proc.log()
            assert time.monotonic() < deadline, (checked, proc.log())
            time.sleep(0.2)
        done = jobq(project, env, "enqueue", "bump", "-m", "jobs", "--json", '{"n": 41}', "--wait-s", "30")
        assert done.returncode == 0, (done, proc.log())
        assert '"result": 42' in done.stdout
        assert "the user's own worker.py was imported" not in proc.log()
    finally:
        proc.stop()
