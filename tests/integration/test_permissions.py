"""ACL users that lack what jobq needs, on the real redis-server: each refusal is named, never taken for an outage.

A worker exits 2 at start-up naming the missing permission (and `--processes N` stops instead of
restarting it), the API answers 500 naming it, and a producer refuses to enqueue a job no worker with
that user could claim. The runbook's own ACL line runs a job end to end.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from tests.integration.harness import JOBQ, ROOT, StartWorker
from worker.client.producer import Client
from worker.errors import RedisPermissionError
from worker.http.api import create_app
from worker.observability.metrics import Metrics
from worker.process.embedded import EmbeddedRedis
from worker.protocol.permissions import acl_line
from worker.settings import JobqSettings

PASSWORD = "acl-pw"
TOKEN = "t0ken"
FULL = ["~arq:*", "~jobq:*", "~test:*", "+@all", "-@dangerous"]
#: user -> (its rules, what the error must name: the rule that grants what is missing)
LACKING = {
    "no-jobq-keys": (["~arq:*", "~test:*", "+@all", "-@dangerous"], "~jobq:*"),
    "no-scripting": ([*FULL, "-@scripting"], "+@scripting"),
    "read-only": ([*FULL, "-@write"], "+@write"),
}


@pytest.fixture(scope="module")
def acl_users(redis_server: EmbeddedRedis) -> Iterator[None]:
    admin = redis.Redis.from_url(redis_server.url)
    for user, (rules, _) in LACKING.items():
        admin.execute_command("ACL", "SETUSER", user, "reset", "on", f">{PASSWORD}", *rules)
    yield
    admin.execute_command("ACL", "DELUSER", *LACKING)
    admin.close()


def as_user(settings: JobqSettings, user: str) -> JobqSettings:
    return settings.model_copy(update={"redis_username": user, "redis_password": SecretStr(PASSWORD)})


def user_env(user: str) -> dict[str, str]:
    return {"JOBQ_REDIS_USERNAME": user, "JOBQ_REDIS_PASSWORD": PASSWORD}


def assert_names_the_fix(message: str, user: str) -> None:
    assert f"ACL SETUSER {user} {LACKING[user][1]}" in message, message
    assert "unreachable" not in message


@pytest.mark.parametrize("user", list(LACKING))
@pytest.mark.usefixtures("acl_users")
def test_a_worker_without_a_permission_exits_2_naming_it(user: str, start_worker: StartWorker) -> None:
    worker = start_worker(ready=False, **user_env(user))
    assert worker.wait(timeout=60) == 2, worker.log()
    assert_names_the_fix(worker.log(), user)
    assert "Traceback" not in worker.log()


@pytest.mark.parametrize("user", list(LACKING))
@pytest.mark.usefixtures("acl_users")
def test_the_supervisor_stops_with_2_instead_of_restarting_refused_workers(
    user: str, start_worker: StartWorker
) -> None:
    supervisor = start_worker([JOBQ, "worker", "--processes", "2"], ready=False, **user_env(user))
    assert supervisor.wait(timeout=90) == 2, supervisor.log()
    log = supervisor.log()
    assert len(re.findall(r"worker \d started", log)) == 2, log  # neither was started again
    assert "not restarting" in log
    assert_names_the_fix(log, user)


@pytest.mark.parametrize("user", list(LACKING))
@pytest.mark.usefixtures("acl_users")
async def test_the_producer_refuses_jobs_no_worker_could_claim(
    user: str, settings: JobqSettings, redis_server: EmbeddedRedis
) -> None:
    async with Client(as_user(settings, user)) as client:
        for job_id in (None, "explicit-id"):
            with pytest.raises(RedisPermissionError) as refused:
                await client.enqueue("add", {"a": 1, "b": 2}, job_id=job_id)
            assert_names_the_fix(str(refused.value), user)
            assert "Nothing was enqueued" in str(refused.value)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        assert admin.zcard(settings.queue_name) == 0
        assert not admin.exists("arq:job:explicit-id")
    finally:
        admin.close()


@pytest.mark.parametrize("user", list(LACKING))
@pytest.mark.usefixtures("acl_users")
async def test_the_api_names_the_missing_permission(user: str, settings: JobqSettings) -> None:
    async with Client(as_user(settings, user)) as client:
        app = create_app(client, Metrics(), token=TOKEN)
        async with TestClient(TestServer(app)) as http:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            answer = await http.post("/v1/jobs", json={"task": "add", "payload": {"a": 1, "b": 2}}, headers=auth)
            assert answer.status == 500, await answer.text()
            assert_names_the_fix((await answer.json())["error"], user)
            if user == "no-jobq-keys":  # a read of a jobq key is refused too, and named
                answer = await http.get("/v1/jobs/some-job", headers=auth)
                assert answer.status == 500, await answer.text()
                body = (await answer.json())["error"]
                assert "jobq:*" in body
                assert "unreachable" not in body


def test_the_runbooks_acl_line_is_jobqs() -> None:
    runbook = (ROOT / "deploy" / "README.md").read_text()
    assert f"`{acl_line('arq:queue')}`" in runbook


async def test_the_runbooks_acl_line_runs_a_job_end_to_end(
    settings: JobqSettings, redis_server: EmbeddedRedis, start_worker: StartWorker
) -> None:
    user = f"runbook-{uuid.uuid4().hex[:8]}"
    queue = f"arq:{settings.queue_name}"  # under arq:*, as the default queue is
    rules = acl_line(queue, user).split()[3:]  # after "ACL SETUSER <user>"
    admin = redis.Redis.from_url(redis_server.url)
    admin.execute_command("ACL", "SETUSER", user, *[r.replace(">PASSWORD", f">{PASSWORD}") for r in rules])
    try:
        worker = start_worker(JOBQ_QUEUE_NAME=queue, **user_env(user))
        async with Client(as_user(settings, user).model_copy(update={"queue_name": queue})) as client:
            handle = await client.enqueue("add", {"a": 2, "b": 3})
            assert (await handle.result(timeout_s=30)).total == 5
        assert "refuses" not in worker.log()
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


@pytest.mark.usefixtures("acl_users")
def test_cli_commands_name_a_refused_permission_in_one_line(settings: JobqSettings) -> None:
    env = {
        **os.environ,
        "JOBQ_REDIS_URL": settings.redis_url,
        "JOBQ_QUEUE_NAME": settings.queue_name,
        **user_env("no-jobq-keys"),
    }
    for argv in (["dlq", "list"], ["stats", "--queue", settings.queue_name]):
        done = subprocess.run([JOBQ, *argv], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert "ACL SETUSER no-jobq-keys" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert "NoPermissionError" not in done.stderr
