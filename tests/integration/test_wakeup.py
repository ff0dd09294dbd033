"""Worker processes wake on a producer's signal, with and without access to the wake-up channels."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from tests.harness import sync_reply
from tests.integration.harness import StartWorker
from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis
from worker.protocol.keys import wake_channel
from worker.settings import JobqSettings

SLOW_POLL_S = "30"  # the fallback poll never picks a job up within these tests


def wait_subscribed(settings: JobqSettings, timeout_s: float = 30) -> None:
    """Until a worker listens on the queue's wake-up channel (a condition, not a guess at start-up speed)."""
    r = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout_s
    try:
        while not dict(sync_reply(r.pubsub_numsub(wake_channel(settings.queue_name)))).get(
            wake_channel(settings.queue_name).encode()
        ):
            assert time.monotonic() < deadline, f"no worker subscribed within {timeout_s}s"
            time.sleep(0.02)
    finally:
        r.close()


def acl_settings(settings: JobqSettings, user: str) -> JobqSettings:
    return settings.model_copy(update={"redis_url": settings.redis_url.replace("redis://", f"redis://{user}:pw@")})


@pytest.fixture
def acl_users(redis_server: EmbeddedRedis) -> Iterator[None]:
    """Two least-privilege users: one may use the wake-up channels, the other may not."""
    admin = redis.Redis.from_url(redis_server.url)
    keys = ["~arq:*", "~jobq:*", "~test:*", "+@all", "-@dangerous"]
    admin.execute_command("ACL", "SETUSER", "waker", "on", ">pw", *keys, "&jobq:wake:*")
    admin.execute_command("ACL", "SETUSER", "mute", "on", ">pw", *keys, "resetchannels")
    yield
    admin.execute_command("ACL", "DELUSER", "waker", "mute")
    admin.close()


async def test_an_idle_worker_process_runs_a_new_job_without_waiting_for_the_poll(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    start_worker(JOBQ_POLL_DELAY_S=SLOW_POLL_S)
    wait_subscribed(settings)  # idle: subscribed, waiting
    async with Client(settings) as client:
        handle = await client.enqueue("add", {"a": 2, "b": 2})
        assert (await handle.result(timeout_s=10)).total == 4


async def test_a_user_with_the_wake_up_channels_wakes_workers(
    settings: JobqSettings, acl_users: None, start_worker: StartWorker
) -> None:
    start_worker(JOBQ_POLL_DELAY_S=SLOW_POLL_S, JOBQ_REDIS_USERNAME="waker", JOBQ_REDIS_PASSWORD="pw")
    wait_subscribed(settings)
    async with Client(acl_settings(settings, "waker")) as client:
        handle = await client.enqueue("add", {"a": 1, "b": 2})
        assert (await handle.result(timeout_s=10)).total == 3


async def test_without_the_wake_up_channels_jobs_still_enqueue_and_run_by_polling(
    settings: JobqSettings, acl_users: None, start_worker: StartWorker
) -> None:
    worker = start_worker(JOBQ_POLL_DELAY_S="0.05", JOBQ_REDIS_USERNAME="mute", JOBQ_REDIS_PASSWORD="pw")
    async with Client(acl_settings(settings, "mute")) as client:
        handle = await client.enqueue("add", {"a": 3, "b": 2})  # its PUBLISH is refused, the job is written
        assert handle.created
        assert (await handle.result(timeout_s=10)).total == 5
    deadline = time.monotonic() + 30
    while "no wake-up subscription" not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.02)
