"""Helpers shared by the unit and integration tiers (the conftests keep only fixtures)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable
from typing import TypeVar, cast

from worker import JobStatus
from worker.client.producer import Client

T = TypeVar("T")


async def wait_status(
    client: Client, job_id: str, wanted: JobStatus, timeout_s: float = 10.0, interval_s: float = 0.02
) -> None:
    """Until the job's status is ``wanted``; fails naming the job and the last status after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (status := (await client.job(job_id).status()).status) is not wanted:
        assert time.monotonic() < deadline, f"job {job_id} never reached {wanted} within {timeout_s}s (still {status})"
        await asyncio.sleep(interval_s)


async def reply(command: Awaitable[T] | T) -> T:
    """The reply of an asyncio redis-py command.

    redis-py types each command ``Awaitable[T] | T`` (one signature for its sync and asyncio clients);
    on an asyncio client the call is always awaitable.
    """
    assert inspect.isawaitable(command), f"{command!r} is not the call of an asyncio client's command"
    return await cast("Awaitable[T]", command)


def sync_reply(command: Awaitable[T] | T) -> T:
    """The reply of a sync redis-py command (typed ``Awaitable[T] | T`` like the asyncio ones)."""
    assert not inspect.isawaitable(command), f"{command!r} is the call of an asyncio client's command"
    return command
