"""The CLI's --queue options and JOBQ_QUEUE_NAME refuse names jobq may not use as a queue: exit 2, nothing written."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.harness import JOBQ, ROOT, subprocess_env
from tests.integration.test_cli_jobs import jobq
from worker.client.producer import Client
from worker.settings import JobqSettings


def _flat(text: str) -> str:
    """stderr without the box rich draws around typer's errors."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize(
    "argv",
    [
        ["enqueue", "add", "--json", '{"a": 1, "b": 1}', "--queue", "jobq:dlq:arq:queue"],
        ["stats", "--queue", "arq:job:x"],
        ["job", "status", "some-job", "--queue", ""],
        ["dlq", "list", "--queue", "orders:index"],
    ],
)
async def test_a_bad_queue_option_exits_2_naming_the_option(
    settings: JobqSettings, client: Client, argv: list[str]
) -> None:
    jobs_before = set(await client.redis.keys("arq:job:*"))  # the session's Redis holds other tests' jobs
    done = jobq(settings, *argv)
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--queue': the queue name" in _flat(done.stderr)
    assert set(await client.redis.keys("arq:job:*")) == jobs_before
    assert not await client.redis.exists("jobq:dlq:arq:queue")


def test_a_reserved_queue_name_in_the_environment_exits_2_naming_the_variable(settings: JobqSettings) -> None:
    env = subprocess_env(settings, JOBQ_QUEUE_NAME="jobq:dlq:arq:queue")
    done = subprocess.run([JOBQ, "stats"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "JOBQ_QUEUE_NAME='jobq:dlq:arq:queue': the queue name 'jobq:dlq:arq:queue' collides" in _flat(done.stderr)
