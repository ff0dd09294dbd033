"""Signed job envelopes are bound to their job id and queue: a copy under another id never runs (issue 12, item 5)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import cron_tasks
from tests.unit.harness import Clock, Harness
from worker import DeadLetterStore, JobStatus, Schedule
from worker.engine.scheduler import CronScheduler
from worker.errors import EnvelopeFieldError, SignatureError
from worker.protocol.connection import codec_for
from worker.protocol.serialization import EnvelopeCodec, loads
from worker.taskdef.cron import effective_schedules

KEY = b"k" * 32
JOB: dict[str, Any] = {"t": None, "f": "add", "a": [{"a": 1, "b": 2}], "k": {}, "et": 1_700_000_000_000}
names = st.text(min_size=1, max_size=40)


@given(job_id=names, queue=names, signed=st.booleans())
def test_a_bound_envelope_reads_back_under_its_own_id_and_queue(job_id: str, queue: str, signed: bool) -> None:
    codec = EnvelopeCodec(KEY if signed else None)
    body = codec.loads_job(codec.dumps_job(JOB, job_id=job_id, queue=queue), job_id=job_id, queue=queue)
    assert body == {**JOB, "id": job_id, "q": queue}


@pytest.mark.parametrize(("job_id", "queue"), [("other", "arq:queue"), ("j1", "other:queue"), ("other", "other")])
def test_a_signed_envelope_copied_under_another_id_or_queue_is_refused(job_id: str, queue: str) -> None:
    codec = EnvelopeCodec(KEY)
    raw = codec.dumps_job(JOB, job_id="j1", queue="arq:queue")
    with pytest.raises(SignatureError, match="holds an envelope written for job 'j1' on queue 'arq:queue'"):
        codec.loads_job(raw, job_id=job_id, queue=queue)


def test_an_unsigned_copy_is_refused_too() -> None:
    raw = EnvelopeCodec().dumps_job(JOB, job_id="j1", queue="arq:queue")
    with pytest.raises(EnvelopeFieldError, match="a job copied under another id or queue is never run"):
        EnvelopeCodec().loads_job(raw, job_id="j2", queue="arq:queue")


def test_the_binding_is_inside_the_signed_text_so_other_languages_verify_it_the_same_way() -> None:
    envelope = orjson.loads(EnvelopeCodec(KEY).dumps_job(JOB, job_id="j1", queue="arq:queue"))
    assert envelope["sig"] == hmac.new(KEY, envelope["d"].encode(), hashlib.sha256).hexdigest()
    assert orjson.loads(envelope["d"]) == {**JOB, "id": "j1", "q": "arq:queue"}


def test_a_bound_envelope_cannot_be_downgraded_to_the_unbound_form() -> None:
    # Dropping the binding from the text breaks the signature; re-signing needs the key.
    codec = EnvelopeCodec(KEY)
    envelope = orjson.loads(codec.dumps_job(JOB, job_id="j1", queue="arq:queue"))
    envelope["d"] = orjson.dumps(JOB).decode()
    with pytest.raises(SignatureError, match="does not match"):
        codec.loads_job(orjson.dumps(envelope), job_id="j2", queue="arq:queue")
    envelope["sig"] = hmac.new(b"guess", envelope["d"].encode(), hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError, match="does not match"):
        codec.loads_job(orjson.dumps(envelope), job_id="j2", queue="arq:queue")


def test_envelopes_signed_before_the_binding_are_accepted_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    codec = EnvelopeCodec(KEY)
    legacy = codec.dumps(JOB)  # the body-only signature, as jobq wrote before and arq's enqueue_job still does
    with caplog.at_level(logging.WARNING, logger="jobq.serialization"):
        assert codec.loads_job(legacy, job_id="old-1", queue="arq:queue") == JOB
        assert codec.loads_job(legacy, job_id="old-2", queue="arq:queue") == JOB
    warnings = [r for r in caplog.records if r.name == "jobq.serialization"]
    assert len(warnings) == 1
    assert "JOBQ_SIGNING_ACCEPT_UNBOUND=false" in warnings[0].getMessage()
    assert "next release refuses them" in warnings[0].getMessage()


def test_envelopes_signed_before_the_binding_are_refused_when_the_setting_says_so(make_settings: Any) -> None:
    codec = codec_for(make_settings(signing_key="k" * 32, signing_accept_unbound=False))
    legacy = codec.dumps(JOB)
    with pytest.raises(SignatureError, match="JOBQ_SIGNING_ACCEPT_UNBOUND=false refuses it"):
        codec.loads_job(legacy, job_id="old", queue="arq:queue")
    assert codec.loads_job(codec.dumps_job(JOB, job_id="new", queue="q"), job_id="new", queue="q")


def test_arqs_deserializer_still_reads_and_verifies_bound_envelopes() -> None:
    codec = EnvelopeCodec(KEY)
    raw = codec.dumps_job(JOB, job_id="j1", queue="arq:queue")
    assert codec.loads(raw)["f"] == "add"
    with pytest.raises(SignatureError):
        EnvelopeCodec(b"other").loads(raw)


def test_a_result_copied_under_another_id_is_refused() -> None:
    codec = EnvelopeCodec(KEY)
    result = codec.dumps({**JOB, "s": True, "r": 3, "st": 1, "ft": 2, "q": "arq:queue", "id": "j1"})
    assert codec.loads_result(result, job_id="j1")["r"] == 3
    with pytest.raises(SignatureError, match="written for job 'j1'"):
        codec.loads_result(result, job_id="j2")


def test_the_bound_form_is_what_the_module_level_decoder_reads_too() -> None:
    raw = EnvelopeCodec().dumps_job(JOB, job_id="j1", queue="arq:queue")
    assert loads(raw) == {**JOB, "id": "j1", "q": "arq:queue"}


# --- end to end on fakeredis ---------------------------------------------------------------------


def store(h: Harness) -> DeadLetterStore:
    return DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=h.settings.job_expires_s, clock_ms=h.clock.ms)


async def test_a_signed_job_copied_by_hand_under_another_id_is_dead_lettered_not_run(make_harness: Any) -> None:
    h = make_harness(signing_key="shared-secret")
    original = await h.client.enqueue("add", {"a": 2, "b": 3}, job_id="original")
    await h.redis.set("arq:job:copy", await h.redis.get("arq:job:original"))
    await h.redis.zadd("arq:queue", {"copy": h.clock.ms()})
    assert await h.run_due() == 2
    assert (await original.wait(timeout_s=1)).value.total == 5
    copy = h.client.job("copy")
    assert (await copy.status()).status == JobStatus.DEAD_LETTERED
    entry = await store(h).show("copy")
    assert entry.error_type == "worker.errors.SerializationError"
    assert "unable to decode job" in entry.message
    assert "written for job 'original' on queue 'arq:queue'" in entry.message
    assert entry.tries == 1


async def test_a_signed_job_copied_to_another_queue_is_dead_lettered_not_run(make_harness: Any) -> None:
    h = make_harness(signing_key="shared-secret", queue_name="payments")
    await h.client.enqueue("add", {"a": 2, "b": 3}, job_id="original", queue="arq:queue")
    await h.redis.set("arq:job:stolen", await h.redis.get("arq:job:original"))
    await h.redis.zadd("payments", {"stolen": h.clock.ms()})
    own = await h.client.enqueue("add", {"a": 1, "b": 1}, job_id="own")
    assert await h.run_due() == 2
    assert (await own.wait(timeout_s=1)).value.total == 2
    entry = await store(h).show("stolen")
    assert "written for job 'original' on queue 'arq:queue'" in entry.message
    assert await h.redis.zscore("arq:queue", "original") is not None  # the original still waits on its queue


async def test_cron_ticks_are_bound_to_their_tick_job_id(make_harness: Any, clock: Clock) -> None:
    h = make_harness(signing_key="shared-secret")
    codec = codec_for(h.settings)
    schedule = Schedule(cron_tasks.record_tick, every_s=10, name="ten")
    cron = CronScheduler(
        h.redis, codec, h.settings.queue_name, effective_schedules([schedule], {}),
        misfire_grace_s=30, lookahead_s=1, job_expires_s=3600, clock=clock,
    )  # fmt: skip
    assert await cron.enqueue_due() == 0  # the first tick is 10 s away
    clock.advance(10)
    assert await cron.enqueue_due() == 1
    (tick_id,) = [m.decode() for m in await h.redis.zrange(h.settings.queue_name, 0, -1)]
    raw = await h.redis.get(f"arq:job:{tick_id}")
    assert codec.loads_job(raw, job_id=tick_id, queue="arq:queue")["f"] == "record_tick"
    with pytest.raises(SignatureError):
        codec.loads_job(raw, job_id=tick_id + "0", queue="arq:queue")
