"""A task module whose longest timeout is 1 s, so a killed worker's jobs come back within ~16 s
(arq's in-progress TTL is the longest task timeout + 15 s until leases replace it)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from worker import JobContext, PermanentError, task


class DoomedIn(BaseModel):
    n: int


@task(timeout_s=1)
async def doomed(ctx: JobContext, payload: DoomedIn) -> None:
    await asyncio.sleep(0.005)
    raise PermanentError(f"job {payload.n} can never succeed")
