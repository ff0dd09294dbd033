"""The jobq command line: demo end to end, settings and tasks listings, help and exit codes."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.harness import JOBQ, ROOT


def run(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    return subprocess.run(
        [JOBQ, *args], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("embedded", ["redis-server", "fakeredis"])
def test_demo_runs_a_batch_and_prints_the_summary(embedded: str) -> None:
    out = run("demo", "--jobs", "8", "--embedded", embedded)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Started an embedded Redis ({embedded})" in out.stdout
    assert "jobq demo: what happened" in out.stdout
    # 8 text jobs, deferred, two failing, aborted, 4 webhooks, fetch_many and crawl.
    assert "18 jobs finished" in out.stdout
    assert "✗" not in out.stdout
    assert out.stdout.count("✓") == 17
    assert "Serving the demo web site at http://127.0.0.1:" in out.stdout
    assert "Stopped 2 worker processes" in out.stdout


def test_settings_command_hides_a_password_in_the_url_query() -> None:
    out = run("settings", JOBQ_REDIS_URL="redis://cache:6379/0?username=bob&password=canary-q", COLUMNS="200")
    assert out.returncode == 0, out.stderr
    assert "canary-q" not in out.stdout
    assert "redis://cache:6379/0 " in out.stdout
    assert "**********" in out.stdout


def test_settings_command_hides_secrets() -> None:
    out = run("settings", JOBQ_REDIS_PASSWORD="canary-pw", JOBQ_MAX_JOBS="7")
    assert out.returncode == 0, out.stderr
    assert "canary-pw" not in out.stdout
    assert "**********" in out.stdout
    assert "JOBQ_MAX_JOBS" in out.stdout


def test_settings_error_exit_code_and_stderr() -> None:
    out = run("settings", JOBQ_JOB_TIMEOUT_S="-3")
    assert out.returncode == 2
    assert "JOBQ_JOB_TIMEOUT_S='-3'" in out.stderr
    assert out.stdout == ""


def test_tasks_command_lists_tasks_with_payloads() -> None:
    out = run("tasks", JOBQ_TASK_MODULES="tasks")
    assert out.returncode == 0, out.stderr
    for name in ("ping", "sleep", "fail", "word_stats", "TextIn(text, top)"):
        assert name in out.stdout


def test_help_explains_each_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    for command in ("worker", "demo", "settings", "tasks"):
        assert command in out.stdout
    worker_help = run("worker", "--help").stdout
    assert "--burst" in worker_help
    assert "SIGTERM" in worker_help


def test_bad_option_is_a_usage_error() -> None:
    out = run("demo", "--embedded", "docker")
    assert out.returncode == 2
    assert "--embedded must be auto, redis-server or fakeredis" in out.stderr
