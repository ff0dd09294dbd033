"""A new user's project: jobq installed from its built wheel into a fresh virtualenv, the user's own task module
run from the project folder without PYTHONPATH, next to files named worker.py and tasks.py of the user's own.

Slow (a wheel build and an install, about a minute here): one module-scoped virtualenv serves every test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration.harness import ROOT, WorkerProcess
from worker.process.embedded import EmbeddedRedis

pytestmark = pytest.mark.integration

INSTALL_TIMEOUT_S = 600

#: The user's own arq-style worker.py: importing it as jobq's package would fail loudly.
USERS_WORKER_PY = 'raise SystemExit("the user\'s own worker.py was imported")\n'
#: The user's tasks.py (Celery's usual name): their task module, the same as the packaging example's.
USERS_TASKS_PY = (ROOT / "deploy" / "examples" / "project" / "shop" / "jobs.py").read_text()


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jobq built as a wheel from this checkout and installed (not editable) into a new virtualenv."""
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(build), str(ROOT)],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    (wheel,) = build.glob("jobq-*.whl")
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.create(env_dir, with_pip=True)
    subprocess.run(
        [env_dir / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", ROOT / "constraints.txt", wheel],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    return env_dir


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "worker.py").write_text(USERS_WORKER_PY)
    (folder / "tasks.py").write_text(USERS_TASKS_PY)
    return folder


def user_env(redis_server: EmbeddedRedis, queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBQ_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(JOBQ_REDIS_URL=redis_server.url, JOBQ_QUEUE_NAME=queue)
    return env


def jobq(venv_dir: Path, folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv_dir / "bin" / "jobq"), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def worker_in_project(
    fresh_venv: Path, project: Path, redis_server: EmbeddedRedis, queue_name: str, tmp_path: Path
) -> Iterator[WorkerProcess]:
    env = user_env(redis_server, queue_name)
    proc = WorkerProcess(
        [str(fresh_venv / "bin" / "jobq"), "worker", "tasks"], env, tmp_path / "worker.log", cwd=project
    )
    try:
        proc.wait_ready(redis_server.url, queue_name)
        yield proc
    finally:
        proc.stop()


def test_the_installed_wheel_is_not_the_checkout_and_says_its_version(fresh_venv: Path, project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    where = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c", "import worker, tasks; print(worker.__file__, tasks.__file__)"],
        cwd=fresh_venv,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in where
    assert "site-packages" in where
    assert next(fresh_venv.glob("lib/python*/site-packages/worker/py.typed")).exists()
    version = jobq(fresh_venv, project, env, "--version")
    assert version.returncode == 0, version
    assert version.stdout.startswith("jobq "), version
    help_ = jobq(fresh_venv, project, env, "--help")
    assert help_.returncode == 0, help_
    assert "worker" in help_.stdout, help_


def test_a_worker_runs_the_users_own_tasks_py_from_the_project_folder(
    worker_in_project: WorkerProcess, fresh_venv: Path, project: Path, redis_server: EmbeddedRedis, queue_name: str
) -> None:
    env = user_env(redis_server, queue_name)
    done = jobq(
        fresh_venv,
        project,
        env,
        "enqueue",
        "charge",
        "-m",
        "tasks",
        "--json",
        '{"order_id": 7, "amount": 10}',
        "--wait-s",
        "60",
    )
    assert done.returncode == 0, (done, worker_in_project.log())
    answer = orjson.loads(done.stdout)
    assert answer["result"] == {"order_id": 7, "total": 12.0}
    assert "user's own worker.py was imported" not in worker_in_project.log()
    listed = jobq(fresh_venv, project, env, "tasks", "tasks")
    assert listed.returncode == 0, listed
    assert "charge" in listed.stdout, listed


def test_naming_the_users_worker_py_as_a_task_module_names_both_files(
    fresh_venv: Path, project: Path, redis_server: EmbeddedRedis, queue_name: str
) -> None:
    refused = jobq(fresh_venv, project, user_env(redis_server, queue_name), "tasks", "worker")
    assert refused.returncode == 2
    assert str(project / "worker.py") in refused.stderr
    assert "jobq's own package 'worker'" in refused.stderr
    assert "rename yours" in refused.stderr


def test_the_users_tasks_py_and_a_builtin_task_module_together_name_both(
    fresh_venv: Path, project: Path, redis_server: EmbeddedRedis, queue_name: str
) -> None:
    refused = jobq(fresh_venv, project, user_env(redis_server, queue_name), "tasks", "tasks", "tasks.webhooks")
    assert refused.returncode == 2
    assert str(project / "tasks.py") in refused.stderr
    assert "tasks.webhooks" in refused.stderr


def test_without_the_project_folder_on_the_path_the_users_module_is_not_found(
    fresh_venv: Path, project: Path, redis_server: EmbeddedRedis, queue_name: str
) -> None:
    (project / "shop_jobs.py").write_text(USERS_TASKS_PY)
    env = user_env(redis_server, queue_name)
    assert jobq(fresh_venv, project, env, "tasks", "shop_jobs").returncode == 0
    refused = jobq(fresh_venv, project, env, "tasks", "shop_jobs", "--no-cwd")
    assert refused.returncode == 2
    assert "cannot import task module 'shop_jobs'" in refused.stderr


def test_the_users_worker_py_on_pythonpath_does_not_stand_in_for_jobq(
    fresh_venv: Path, project: Path, redis_server: EmbeddedRedis, queue_name: str
) -> None:
    env = user_env(redis_server, queue_name) | {"PYTHONPATH": str(project)}
    shown = jobq(fresh_venv, project, env, "--help")
    assert shown.returncode == 0, shown
    assert "worker" in shown.stdout, shown
    listed = jobq(fresh_venv, project, env, "tasks", "tasks")
    assert listed.returncode == 0, listed
    assert "charge" in listed.stdout, listed
