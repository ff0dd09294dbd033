"""Envelopes that decode (or half decode) but cannot be handled or written back: each job is dead-lettered on
its first try, with its raw bytes kept, and never comes back."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.unit.harness import Harness
from worker import DeadLetterStore, Outcome
from worker.client.dead_letters import DeadLetter
from worker.engine.assembly import execution_config
from worker.engine.attempt import AttemptRunner
from worker.engine.executor import JobExecutor
from worker.engine.finish import DeadLetterBounds, TryRecorder
from worker.engine.limiter import DistributedLimiter
from worker.engine.try_handle import TryHandle
from worker.engine.try_records import TryJob, dead_letter_entry
from worker.protocol.keys import JobKeys
from worker.protocol.serialization import EnvelopeCodec


def store(h: Harness) -> DeadLetterStore:
    return DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=h.settings.job_expires_s, clock_ms=h.clock.ms)


def nested(depth: int) -> str:
    return "[" * (depth - 1) + "1" + "]" * (depth - 1)


def unsigned(body: dict[str, Any]) -> bytes:
    return orjson.dumps({"v": 1, "d": body})


def add_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"t": 1, "f": "add", "a": [{"a": 1, "b": 2}], "k": {}, "et": 1_800_000_000_000}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


HOSTILE = [
    pytest.param(unsigned(add_body(f=None)), "unable to decode job", id="no-task-name"),
    pytest.param(unsigned(add_body(et=1e300)), "unable to decode job", id="et-1e300"),
    pytest.param(unsigned(add_body(et=-1e300)), "unable to decode job", id="et-minus-1e300"),
    pytest.param(unsigned(add_body(et=1e20)), "unable to decode job", id="et-1e20"),
    pytest.param(unsigned(add_body(et=9.3e18)), "unable to decode job", id="et-9.3e18"),
    pytest.param(b'{"v":1,"d":{"f":"add","a":[],"k":{},"et":1e300}}', "unable to decode job", id="et-1e300-raw"),
]


async def _put(h: Harness, job_id: str, envelope: bytes) -> None:
    await h.redis.set(f"arq:job:{job_id}", envelope)
    await h.redis.zadd(h.settings.queue_name, {job_id: h.clock.ms()})


class LenientCodec(EnvelopeCodec):
    """Reads any envelope's body as it is: what reaches the worker when the decoder lets a bad body through."""

    def loads(self, raw: bytes) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(raw)["d"]
        return body

    def loads_job(self, raw: bytes, *, job_id: str, queue: str) -> dict[str, Any]:
        return self.loads(raw)


async def _run_due(h: Harness, *, lenient: bool) -> None:
    if not lenient:
        await h.run_due()
        return
    # The worker's own claim, recorder and policies, with a decoder that checks nothing.
    executor = JobExecutor(
        h.registry,
        LenientCodec(),
        execution_config(h.settings, "w"),
        recorder=TryRecorder(h.redis, h.settings.queue_name, DeadLetterBounds(100, 10**9)),
        attempts=AttemptRunner(h.registry, DistributedLimiter(h.redis, 5)),
        clock=h.clock,
    )
    for claim in await h.worker.leases.claim(h.clock.ms(), 10, 100):
        await executor.run(TryHandle(claim))
        h.worker.leases.release(claim.job_id)


async def _dead_lettered_once(h: Harness, job_id: str, envelope: bytes, *, lenient: bool = False) -> str:
    await _put(h, job_id, envelope)
    good = await h.client.enqueue("add", {"a": 2, "b": 2})
    await _run_due(h, lenient=lenient)
    assert (await good.result(timeout_s=1)).total == 4
    entry = await store(h).show(job_id)
    assert (entry.tries, entry.interruptions) == (1, 0)
    assert entry.envelope_bytes() == envelope  # the raw bytes, whatever could not be decoded or written
    assert await h.redis.zscore(h.settings.queue_name, job_id) is None
    assert await h.redis.exists(f"arq:job:{job_id}", f"arq:in-progress:{job_id}", f"arq:retry:{job_id}") == 0
    h.clock.advance(3600)
    assert await h.worker.leases.claim(h.clock.ms(), 10, 100) == []  # it never comes back
    return entry.message


@pytest.mark.parametrize("lenient", [False, True], ids=["codec", "lenient-codec"])
@pytest.mark.parametrize(("envelope", "message"), HOSTILE)
async def test_an_envelope_that_cannot_be_handled_is_dead_lettered_on_its_first_try(
    harness: Harness, envelope: bytes, message: str, lenient: bool
) -> None:
    assert message in await _dead_lettered_once(harness, "hostile", envelope, lenient=lenient)
    result = await harness.client.job("hostile").wait(timeout_s=1)
    assert result.outcome is Outcome.DEAD_LETTERED


@pytest.mark.parametrize("lenient", [False, True], ids=["codec", "lenient-codec"])
@pytest.mark.parametrize("depth", [255, 300, 1000])
async def test_arguments_too_deep_to_write_back_still_reach_the_dead_letters(
    harness: Harness, depth: int, lenient: bool
) -> None:
    # orjson reads 1024 levels but writes 254: whether the decoder refuses the job or the task's payload
    # model does, its result is written without the arguments and its dead letter keeps the raw bytes.
    envelope = b'{"v":1,"d":{"t":1,"f":"add","a":[{"a":%s,"b":1}],"k":{},"et":1}}' % nested(depth).encode()
    await _dead_lettered_once(harness, "deep", envelope, lenient=lenient)
    result = await harness.client.job("deep").wait(timeout_s=1)
    assert result.outcome is Outcome.DEAD_LETTERED


async def test_a_non_ascii_signature_is_dead_lettered(make_harness: Any) -> None:
    h = make_harness(signing_key="k")
    body = orjson.dumps(add_body()).decode()
    envelope = orjson.dumps({"v": 1, "d": body, "sig": "é" * 64})
    assert "unable to decode job" in await _dead_lettered_once(h, "sig", envelope)


def test_a_dead_letter_entry_json_cannot_hold_is_made_safe() -> None:
    # Text that is not UTF-8 (a lone surrogate) and a number past 64 bits: the entry is written all the same.
    job = TryJob(JobKeys("x", "q"), "tok", b"\xff raw", "t\udcff", (), {}, 10**30, 5, 1, 1, 0)
    error: dict[str, str | None] = {"type": "E", "message": "bad \udcff text", "traceback": None}
    entry = DeadLetter.from_json(dead_letter_entry(job, "q", error, 7))
    assert (entry.task, entry.message, entry.enqueued_at_ms, entry.failed_at_ms) == (
        "t\\udcff",
        "bad \\udcff text",
        0,
        7,
    )
    assert entry.envelope_bytes() == b"\xff raw"


async def test_an_oversized_envelope_is_dead_lettered_without_being_loaded(make_harness: Any) -> None:
    h = make_harness(max_envelope_bytes=2048)
    envelope = unsigned(add_body(pad="x" * 5000))
    await _put(h, "huge", envelope)
    claim = (await h.worker.leases.claim(h.clock.ms(), 10, 100))[0]
    assert claim.started is not None
    # The claim says how big it is, and does not send it.
    assert (claim.started.envelope, claim.started.oversize_bytes) == (None, len(envelope))
    assert await h.worker.executor.run(TryHandle(claim)) is Outcome.DEAD_LETTERED
    h.worker.leases.release("huge")
    entry = await store(h).show("huge")
    assert entry.error_type == "worker.errors.EnvelopeTooLarge"
    assert f"{len(envelope)} bytes" in entry.message
    assert "JOBQ_MAX_ENVELOPE_BYTES=2048" in entry.message
    assert (entry.envelope, entry.tries) == (None, 1)  # a placeholder, not the bytes
    assert await h.redis.exists("arq:job:huge") == 0
    assert await h.worker.leases.claim(h.clock.ms(), 10, 100) == []


async def test_an_envelope_at_the_limit_runs(make_harness: Any) -> None:
    h = make_harness(max_envelope_bytes=2048)
    envelope = unsigned(add_body())
    envelope = envelope[:-2] + b',"pad":"' + b"x" * (2048 - len(envelope) - 9) + b'"}}'
    assert len(envelope) == 2048
    await _put(h, "fits", envelope)
    await h.run_due()
    assert (await h.client.job("fits").wait(timeout_s=1)).success
