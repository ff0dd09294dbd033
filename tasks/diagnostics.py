"""Diagnostic tasks for smoke-testing a deployment: a no-op, a sleep, and a controlled failure.

``ping`` is the cheapest possible job (benchmarks use it); ``sleep`` holds a slot for a while
(shutdown and concurrency checks); ``fail`` fails its first tries on purpose (retry and
dead-letter checks).
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from worker import JobContext, RetryPolicy, task


class PingIn(BaseModel):
    """Payload of :func:`ping`."""

    message: str = Field("ping", max_length=1000)


class PingOut(BaseModel):
    """What :func:`ping` returns: the message, and which try of which job answered."""

    message: str
    job_id: str
    try_number: int


@task(timeout_s=10)
async def ping(ctx: JobContext, payload: PingIn) -> PingOut:
    """Return the message at once."""
    return PingOut(message=payload.message, job_id=ctx.job_id, try_number=ctx.try_number)


class SleepIn(BaseModel):
    """Payload of :func:`sleep`."""

    seconds: float = Field(ge=0, le=3600)


class SleepOut(BaseModel):
    """What :func:`sleep` returns."""

    slept_s: float


@task(timeout_s=3600)
async def sleep(ctx: JobContext, payload: SleepIn) -> SleepOut:
    """Sleep without blocking the event loop."""
    await asyncio.sleep(payload.seconds)
    return SleepOut(slept_s=payload.seconds)


class DiagnosticFailure(RuntimeError):
    """The failure :func:`fail` raises on purpose."""


class FailIn(BaseModel):
    """Payload of :func:`fail`: fail the first ``fail_tries`` tries (all of them when unset)."""

    message: str = Field("failing on purpose", max_length=1000)
    fail_tries: int | None = Field(None, ge=0)


class FailOut(BaseModel):
    """What :func:`fail` returns once it stops failing."""

    succeeded_on_try: int


@task(timeout_s=10, retry=RetryPolicy(max_tries=3, backoff_base_s=0.1, backoff_max_s=1.0))
async def fail(ctx: JobContext, payload: FailIn) -> FailOut:
    """Raise :class:`DiagnosticFailure` on the first ``fail_tries`` tries, then succeed."""
    if payload.fail_tries is None or ctx.try_number <= payload.fail_tries:
        raise DiagnosticFailure(f"{payload.message} (try {ctx.try_number})")
    return FailOut(succeeded_on_try=ctx.try_number)
