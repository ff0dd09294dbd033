"""Garbage and forged jobs in Redis: the worker survives and records why each job failed."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.integration.conftest import WorkerProcess
from worker.client import Client
from worker.settings import JobqSettings

StartWorker = Callable[..., WorkerProcess]


async def test_garbage_bytes_in_a_job_key_fail_that_job_only(client: Client, start_worker: StartWorker) -> None:
    worker = start_worker()
    queue = client.settings.queue_name
    await client.redis.set("arq:job:garbage-1", b"\x80\x04\x95\xffnot an envelope")
    await client.redis.zadd(queue, {"garbage-1": int(time.time() * 1000)})
    good = await client.enqueue("add", {"a": 1, "b": 1})
    failed = await client.job("garbage-1").wait(timeout=10)
    assert failed.error is not None
    assert "unable to decode job" in failed.error.message
    assert "not a jobq envelope: invalid JSON" in failed.error.message
    assert (await good.wait(timeout=10)).success
    after = await client.enqueue("add", {"a": 2, "b": 2})
    assert (await after.result(timeout=10)).total == 4
    assert worker.proc.poll() is None


def with_key(settings: JobqSettings, key: str | None) -> JobqSettings:
    return JobqSettings(
        redis_url=settings.redis_url,
        queue_name=settings.queue_name,
        task_modules=settings.task_modules,
        signing_key=key,
    )


async def test_signed_worker_refuses_forged_jobs(settings: JobqSettings, start_worker: StartWorker) -> None:
    start_worker(JOBQ_SIGNING_KEY="shared-secret")
    async with Client(with_key(settings, None)) as attacker, Client(with_key(settings, "shared-secret")) as producer:
        bad = await attacker.enqueue("add", {"a": 1, "b": 1})
        good = await producer.enqueue("add", {"a": 1, "b": 1})
        assert (await good.result(timeout=10)).total == 2
        # The forged job's failure is stored signed; read it with the key.
        failed = await producer.job(bad.job_id).wait(timeout=10)
    assert failed.error is not None
    assert "requires signatures" in failed.error.message


async def test_signature_mismatch_is_reported(settings: JobqSettings, start_worker: StartWorker) -> None:
    start_worker(JOBQ_SIGNING_KEY="worker-key")
    async with Client(with_key(settings, "other-key")) as wrong, Client(with_key(settings, "worker-key")) as reader:
        bad = await wrong.enqueue("add", {"a": 1, "b": 1})
        failed = await reader.job(bad.job_id).wait(timeout=10)
    assert failed.error is not None
    assert "does not match" in failed.error.message
