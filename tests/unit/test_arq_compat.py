"""Stock arq clients (configured with jobq's serializer) and jobq interoperate in both directions."""

from __future__ import annotations

import pytest
from arq.jobs import Job, JobStatus

from tests.unit.harness import Harness
from worker import JobFailed
from worker.protocol import serialization


def arq_job(h: Harness, job_id: str) -> Job:
    return Job(job_id, h.redis, _deserializer=serialization.loads)


async def test_job_enqueued_by_arq_runs_on_jobq_and_arq_reads_the_result(harness: Harness) -> None:
    harness.redis.job_serializer = serialization.dumps  # what a plain arq producer configures
    job = await harness.redis.enqueue_job("add", {"a": 40, "b": 2})
    assert job is not None
    assert await harness.run_due() == 1
    assert await arq_job(harness, job.job_id).result(timeout=1) == {"total": 42, "try_number": 1}
    assert await arq_job(harness, job.job_id).status() == JobStatus.complete


async def test_arq_keyword_arguments_become_the_payload_fields(harness: Harness) -> None:
    job = await harness.redis.enqueue_job("add", a=1, b=2)
    assert job is not None
    await harness.run_due()
    assert (await arq_job(harness, job.job_id).result(timeout=1))["total"] == 3


async def test_arq_reads_a_failure_as_job_failed(harness: Harness) -> None:
    job = await harness.redis.enqueue_job("flaky", {"failures": 9}, _job_try=3)  # last try
    assert job is not None
    await harness.run_due()
    with pytest.raises(JobFailed) as info:
        await arq_job(harness, job.job_id).result(timeout=1)
    assert info.value.error_type == "tests.sample_tasks.FlakyError"


async def test_arq_duplicate_detection_matches_jobq(harness: Harness) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="shared")
    assert await harness.redis.enqueue_job("add", {"a": 1, "b": 1}, _job_id="shared") is None


async def test_job_enqueued_by_jobq_is_visible_to_arq(harness: Harness) -> None:
    handle = await harness.client.enqueue("add", {"a": 1, "b": 2}, job_id="from-jobq")
    info = await arq_job(harness, "from-jobq").info()
    assert info is not None
    assert (info.function, list(info.args), info.kwargs) == ("add", [{"a": 1, "b": 2}], {})
    assert await arq_job(harness, "from-jobq").status() == JobStatus.queued
    await harness.run_due()
    assert await arq_job(harness, "from-jobq").result(timeout=1) == {"total": 3, "try_number": 1}
    assert (await handle.wait(timeout_s=1)).unwrap().total == 3


async def test_jobq_handle_reads_an_arq_enqueued_job(harness: Harness) -> None:
    job = await harness.redis.enqueue_job("add", {"a": 5, "b": 5})
    assert job is not None
    await harness.run_due()
    result = await harness.client.job(job.job_id, task="add").wait(timeout_s=1)
    assert result.unwrap().total == 10
