"""Worker services: resources opened once (at start-up when declared), closed at shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

from tasks.http import http_session
from worker import JobqSettings, resource
from worker.engine.services import Resources
from worker.taskdef.services import resources_from_modules

events: list[str] = []


@resource
async def counted(settings: JobqSettings) -> AsyncIterator[str]:
    events.append("open")
    await asyncio.sleep(0.01)
    yield f"value for {settings.queue_name}"
    events.append("close")


async def test_a_resource_opens_once_even_under_concurrent_use_and_closes(make_settings: Any) -> None:
    events.clear()
    resources = Resources(make_settings())
    values = await asyncio.gather(*(resources.get(counted) for _ in range(10)))
    assert set(values) == {"value for arq:queue"}
    assert events == ["open"]
    await resources.close()
    assert events == ["open", "close"]


def test_declared_resources_are_found_in_the_task_modules() -> None:
    assert http_session in resources_from_modules(["tasks"])


async def test_the_worker_opens_declared_resources_at_start_up_and_closes_them(make_harness: Any) -> None:
    h = make_harness(task_modules=["tasks"], poll_delay_s=0.01)
    services = h.worker.executor.services
    running = asyncio.create_task(h.worker.async_run())
    await asyncio.sleep(0.05)
    assert services.resources.is_open(http_session)  # opened by the worker, before any job asked for it
    session = await services.resources.get(http_session)
    assert not session.closed
    h.worker.handle_sig(signal.SIGTERM)
    await asyncio.wait_for(running, 2)
    await h.worker.close()
    assert session.closed
