"""Helpers shared by the unit and integration tiers (the conftests keep only fixtures)."""

from __future__ import annotations

import asyncio
import time

from worker import JobStatus
from worker.client.producer import Client


async def wait_status(
    client: Client, job_id: str, wanted: JobStatus, timeout_s: float = 10.0, interval_s: float = 0.02
) -> None:
    """Until the job's status is ``wanted``; fails naming the job and the last status after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (status := (await client.job(job_id).status()).status) is not wanted:
        assert time.monotonic() < deadline, f"job {job_id} never reached {wanted} within {timeout_s}s (still {status})"
        await asyncio.sleep(interval_s)
