"""A stock arq producer (with jobq's serializer) against a real jobq worker process."""

from __future__ import annotations

import pytest
from arq.connections import RedisSettings, create_pool
from arq.jobs import Job

from tests.integration.harness import StartWorker
from worker import JobFailed
from worker.protocol import serialization
from worker.settings import JobqSettings


async def test_arq_enqueues_and_reads_results_from_a_jobq_worker(
    settings: JobqSettings, start_worker: StartWorker
) -> None:
    start_worker()
    pool = await create_pool(
        RedisSettings.from_dsn(settings.redis_url),
        job_serializer=serialization.dumps,
        job_deserializer=serialization.loads,
        default_queue_name=settings.queue_name,
    )
    try:
        ok = await pool.enqueue_job("add", {"a": 40, "b": 2})
        bad = await pool.enqueue_job("add", {"a": "forty", "b": 2})
        assert ok is not None
        assert bad is not None
        assert await ok.result(timeout=10) == {"total": 42, "try_number": 1}
        with pytest.raises(JobFailed) as info:
            await Job(bad.job_id, pool, _queue_name=settings.queue_name, _deserializer=serialization.loads).result(
                timeout=10
            )
        assert info.value.error_type == "worker.errors.InvalidPayload"
        assert "a: Input should be a valid integer" in info.value.message
    finally:
        await pool.aclose(close_connection_pool=True)
