"""The image's exact command, run here: ENTRYPOINT + CMD and ENV of deploy/Dockerfile against the test Redis.

There is no container engine on this machine, so the test runs what the container would run: the final
stage's exec-form argv (with ``jobq`` taken from this virtualenv instead of the image's /opt/jobq/bin),
its environment, and its HEALTHCHECK command. It sees jobs processed, then stops the worker with SIGTERM
as `docker stop` and Kubernetes do, and checks that it exits within the grace period without losing the
job it could not finish.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable

import pytest

from tests.deploy.dockerfile import Instruction, entrypoint_argv, exec_form, stages
from tests.harness import wait_status
from tests.integration.harness import JOBQ, ROOT, StartWorker, subprocess_env
from worker import JobRequest, JobStatus
from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis, free_port
from worker.settings import JobqSettings

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
GRACE_S = 1.5


@pytest.fixture
def settings(redis_server: EmbeddedRedis, queue_name: str, make_settings: Callable[..., JobqSettings]) -> JobqSettings:
    """The image's task modules (the built-in tasks), on the test Redis and a queue of this test's own."""
    return make_settings(redis_url=redis_server.url, queue_name=queue_name, task_modules=["tasks"])


def image_env() -> dict[str, str]:
    """The ENV of the image's final stage (PATH left out: here ``jobq`` comes from the virtualenv)."""
    env: dict[str, str] = {}
    for instruction in stages(DOCKERFILE)[-1].all("ENV"):
        for pair in shlex.split(instruction.value):
            key, sep, value = pair.partition("=")
            assert sep, f"line {instruction.line}: ENV {pair!r} is not KEY=value"
            env[key] = value
    env.pop("PATH", None)
    return env


def local(argv: list[str]) -> list[str]:
    """``argv`` with the image's ``jobq`` replaced by this virtualenv's."""
    assert argv[0] == "jobq", f"the image runs {argv[0]!r}, not jobq"
    return [JOBQ, *argv[1:]]


def healthcheck_argv() -> list[str]:
    instruction = stages(DOCKERFILE)[-1].last("HEALTHCHECK")
    assert instruction is not None, "the image has no HEALTHCHECK"
    _, _, command = instruction.value.partition("CMD ")
    return exec_form(Instruction("CMD", command.strip(), instruction.line))


async def test_image_command_runs_jobs_and_drains_on_sigterm_within_the_grace(
    settings: JobqSettings, client: Client, start_worker: StartWorker
) -> None:
    argv = local(entrypoint_argv(DOCKERFILE))
    assert argv[1:] == ["worker"]
    http_port = free_port()  # the image's fixed port may be taken on this machine
    env = {
        **image_env(),
        "JOBQ_HTTP_PORT": str(http_port),
        "JOBQ_SHUTDOWN_GRACE_S": str(GRACE_S),
    }
    assert env["PYTHONUNBUFFERED"] == "1"
    container = start_worker(argv, **env)

    pings = await client.enqueue_many([JobRequest("ping", {"message": f"m{i}"}) for i in range(20)])
    assert [(await h.result(timeout_s=10)).message for h in pings] == [f"m{i}" for i in range(20)]

    health = subprocess.run(
        local(healthcheck_argv()), env=subprocess_env(settings, **env), capture_output=True, text=True, timeout=30
    )
    assert health.returncode == 0, health.stdout + health.stderr
    assert "healthy" in health.stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=5) as ready:
        assert ready.status == 200

    short = await client.enqueue("sleep", {"seconds": 0.5})
    long = await client.enqueue("sleep", {"seconds": 5 * GRACE_S})
    await wait_status(client, short.job_id, JobStatus.IN_PROGRESS, 10)
    await wait_status(client, long.job_id, JobStatus.IN_PROGRESS, 10)

    signalled = time.monotonic()
    container.signal(signal.SIGTERM)
    assert container.wait(timeout=GRACE_S + 10) == 0
    stopped_after_s = time.monotonic() - signalled
    assert stopped_after_s < GRACE_S + 1.5, f"stopped {stopped_after_s:.2f}s after SIGTERM (grace {GRACE_S}s)"
    assert "Traceback" not in container.log()

    finished = await short.wait(timeout_s=1)
    assert (finished.success, finished.tries) == (True, 1)  # finished inside the grace period
    handed_back = await long.status()
    assert (handed_back.status, handed_back.tries, handed_back.interruptions) == (JobStatus.QUEUED, 0, 1)

    start_worker(argv, **{**env, "JOBQ_HTTP_PORT": str(free_port())})  # the next replica picks it up
    rerun = await long.wait(timeout_s=5 * GRACE_S + 10)
    assert (rerun.success, rerun.tries, rerun.interruptions) == (True, 1, 1)
