"""Garbage and forged jobs in Redis: the worker survives and records why each job failed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import orjson

from tests.integration.harness import StartWorker
from worker.client.dead_letters import DeadLetterStore
from worker.client.producer import Client
from worker.settings import JobqSettings


async def test_garbage_bytes_in_a_job_key_fail_that_job_only(client: Client, start_worker: StartWorker) -> None:
    worker = start_worker()
    queue = client.settings.queue_name
    await client.redis.set("arq:job:garbage-1", b"\x80\x04\x95\xffnot an envelope")
    await client.redis.zadd(queue, {"garbage-1": int(time.time() * 1000)})
    good = await client.enqueue("add", {"a": 1, "b": 1})
    failed = await client.job("garbage-1").wait(timeout_s=10)
    assert failed.error is not None
    assert "unable to decode job" in failed.error.message
    assert "not a jobq envelope: invalid JSON" in failed.error.message
    assert (await good.wait(timeout_s=10)).success
    after = await client.enqueue("add", {"a": 2, "b": 2})
    assert (await after.result(timeout_s=10)).total == 4
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
        assert (await good.result(timeout_s=10)).total == 2
        # The forged job's failure is stored signed; read it with the key.
        failed = await producer.job(bad.job_id).wait(timeout_s=10)
    assert failed.error is not None
    assert "requires signatures" in failed.error.message


async def test_signature_mismatch_is_reported(settings: JobqSettings, start_worker: StartWorker) -> None:
    start_worker(JOBQ_SIGNING_KEY="worker-key")
    async with Client(with_key(settings, "other-key")) as wrong, Client(with_key(settings, "worker-key")) as reader:
        bad = await wrong.enqueue("add", {"a": 1, "b": 1})
        failed = await reader.job(bad.job_id).wait(timeout_s=10)
    assert failed.error is not None
    assert "does not match" in failed.error.message


# --- every hostile record of issue 12 at once, among many valid jobs, fed to one worker ---------------------

HOSTILE_KEY = "hostile-test-key"
VALID_JOBS = 300
#: Small enough that a 1 MB envelope is over it (the default is 8 MiB).
MAX_ENVELOPE_BYTES = 64 * 1024
WAIT_S = 45.0


def _signed(text: str, *, version: Any = 1) -> bytes:
    sig = hmac.new(HOSTILE_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()
    return orjson.dumps({"v": version, "d": text, "sig": sig})


def _body(job_id: str, queue: str, *, et: str = "", a: str = '[{"a":1,"b":2}]', f: str | None = "add") -> str:
    task = "" if f is None else f'"f":"{f}",'
    return f'{{"t":null,{task}"a":{a},"k":{{}},"et":{et or round(time.time() * 1000)},"id":"{job_id}","q":"{queue}"}}'


def _deep(depth: int) -> str:
    return '[{"a":' + "[" * (depth - 3) + "1" + "]" * (depth - 3) + ',"b":1}]'


def _hostile_records(queue: str) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """job id -> (envelope, the auxiliary keys written next to it: key -> (type, value))."""

    def valid(job_id: str) -> bytes:
        return _signed(_body(job_id, queue))

    return {
        # item 1: corrupt per-job auxiliary keys next to a valid job
        "retry-abc": (valid("retry-abc"), {"arq:retry:retry-abc": ("string", "abc")}),
        "retry-hash": (valid("retry-hash"), {"arq:retry:retry-hash": ("hash", "x")}),
        "meta-string": (
            valid("meta-string"),
            {"arq:retry:meta-string": ("string", "1"), "jobq:meta:meta-string": ("string", "x")},
        ),
        "meta-zz": (valid("meta-zz"), {"arq:retry:meta-zz": ("string", "1"), "jobq:meta:meta-zz": ("hash", "zz")}),
        # items 2 and 3: envelopes that decode but cannot be handled or written back
        "no-f": (_signed(_body("no-f", queue, f=None)), {}),
        "et-1e300": (_signed(_body("et-1e300", queue, et="1e300")), {}),
        "et-minus-1e300": (_signed(_body("et-minus-1e300", queue, et="-1e300")), {}),
        "et-1e20": (_signed(_body("et-1e20", queue, et="1e20")), {}),
        "et-9.3e18": (_signed(_body("et-9.3e18", queue, et="9.3e18")), {}),
        "deep-300": (_signed(_body("deep-300", queue, a=_deep(300))), {}),
        "deep-1000": (_signed(_body("deep-1000", queue, a=_deep(1000))), {}),
        "sig-non-ascii": (orjson.dumps({"v": 1, "d": _body("sig-non-ascii", queue), "sig": "é" * 64}), {}),
        # refused by the decoder's type checks (helper H2's side of item 3)
        "v-true": (_signed(_body("v-true", queue), version=True), {}),
        # item 14: an envelope over JOBQ_MAX_ENVELOPE_BYTES
        "oversized": (_signed(_body("oversized", queue, a='[{"a":1,"b":2,"pad":"' + "x" * 1_000_000 + '"}]')), {}),
    }


async def _write_hostile(redis: Any, queue: str, records: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    for job_id, (envelope, aux) in records.items():
        for key, (kind, value) in aux.items():
            if kind == "string":
                await redis.set(key, value)
            else:
                await redis.hset(key, "failures", value)
        await redis.set(f"arq:job:{job_id}", envelope)
    # Queued last, all at once, between valid jobs: the worker meets them in the middle of its batches.
    await redis.zadd(queue, {job_id: round(time.time() * 1000) for job_id in records})


async def test_one_worker_fed_every_hostile_record_dead_letters_each_once_and_runs_the_rest(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    worker = start_worker(
        JOBQ_SIGNING_KEY=HOSTILE_KEY, JOBQ_MAX_ENVELOPE_BYTES=str(MAX_ENVELOPE_BYTES), JOBQ_LEASE_TTL_S="2"
    )
    queue = settings.queue_name
    records = _hostile_records(queue)
    async with Client(with_key(settings, HOSTILE_KEY)) as producer:
        first = [await producer.enqueue("add", {"a": i, "b": 1}) for i in range(VALID_JOBS // 2)]
        await _write_hostile(producer.redis, queue, records)
        second = [await producer.enqueue("add", {"a": i, "b": 2}) for i in range(VALID_JOBS // 2)]
        for handle in first + second:
            result = await handle.wait(timeout_s=WAIT_S)
            assert result.success, result.error
            assert result.tries == 1
        store = DeadLetterStore(producer.redis, queue, job_expires_s=settings.job_expires_s)
        deadline = time.monotonic() + WAIT_S
        while await store.count() < len(records):
            assert worker.proc.poll() is None, worker.log()
            assert time.monotonic() < deadline, f"dead letters: {[e.job_id for e in await store.list()]}"
            await asyncio.sleep(0.05)
        entries = {entry.job_id: entry for entry in await store.list(limit=None)}
        assert set(entries) == set(records)
        for job_id, entry in entries.items():
            assert (entry.tries, entry.interruptions) == (1, 0), (job_id, entry)
        assert entries["oversized"].envelope is None  # a placeholder, not the megabyte
        assert "JOBQ_MAX_ENVELOPE_BYTES" in entries["oversized"].message
        for job_id in ("retry-abc", "retry-hash", "meta-string", "meta-zz"):
            assert entries[job_id].error_type == "worker.errors.CorruptJobRecord"
        # Nothing is left to come back: no job queued, leased or counted.
        assert await producer.redis.zcard(queue) == 0
        for job_id in records:
            assert await producer.redis.exists(f"arq:in-progress:{job_id}", f"arq:retry:{job_id}") == 0
    assert worker.proc.poll() is None  # the worker never exited
    log = worker.log()
    for job_id in records:
        tries = [line for line in log.splitlines() if f"job {job_id} " in line and " try " in line]
        assert len(tries) == 1, (job_id, tries)
        assert "dead_lettered" in tries[0]
    assert "lease of job" not in log
    assert "ended with an unexpected error" not in log
    assert log.count("Traceback") <= len(records)
