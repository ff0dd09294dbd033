"""A task module with one task that always fails for good: fuel for the dead-letter tests."""

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
