"""Sentry end to end: a real worker and a producer report to a local server that captures envelopes."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import sentry_sdk
from aiohttp import web
from sentry_sdk.envelope import Envelope

from tests.integration.harness import StartWorker
from worker.client.producer import Client
from worker.process.embedded import free_port
from worker.settings import JobqSettings


class Collector:
    """What the local 'Sentry' received: one dict per envelope item (type, headers, payload)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    async def envelope(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp has already undone a Content-Encoding it knows
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        for item in Envelope.deserialize(body).items:
            payload = item.payload.json if item.payload.json is not None else orjson.loads(item.payload.bytes or b"{}")
            self.items.append({"type": item.type, "payload": payload})
        return web.json_response({})

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [i["payload"] for i in self.items if i["type"] == kind]


@pytest.fixture
async def sentry_server() -> AsyncIterator[tuple[Collector, str]]:
    collector = Collector()
    app = web.Application(client_max_size=20 * 1024 * 1024)
    app.router.add_post("/api/{project}/envelope/", collector.envelope)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield collector, f"http://public@127.0.0.1:{port}/1"
    await runner.cleanup()


async def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def tags(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("tags", {})
    return dict(raw) if isinstance(raw, dict) else {k: v for k, v in raw}


async def test_errors_traces_and_check_ins_reach_sentry(
    settings: JobqSettings, start_worker: StartWorker, sentry_server: tuple[Collector, str]
) -> None:
    collector, dsn = sentry_server
    start_worker(
        JOBQ_SENTRY_DSN=dsn,
        JOBQ_SENTRY_TRACES_SAMPLE_RATE="1.0",
        JOBQ_TASK_MODULES="tests.sample_tasks,tests.cron_tasks",
        JOBQ_CRON='{"quarter-hourly": "off"}',
    )
    sentry_sdk.init(dsn=dsn, traces_sample_rate=1.0)
    try:
        async with Client(settings) as client:
            with sentry_sdk.start_transaction(name="checkout", op="http.server") as producer:
                doomed = await client.enqueue("permanent", {"note": "trace me"})
            private = await client.enqueue("slow", {"seconds": 31337.5})  # times out; its payload stays here
            retried = await client.enqueue("retry_later", {"after_s": 0.1})
            await client.redis.set("arq:job:garbled", b"\xff not an envelope")
            await client.redis.zadd(settings.queue_name, {"garbled": int(time.time() * 1000)})
            await doomed.wait(timeout_s=10)
            await private.wait(timeout_s=10)
            assert (await retried.wait(timeout_s=10)).success
        sentry_sdk.flush(timeout=5)

        def errors() -> list[dict[str, Any]]:
            return collector.of_type("event")

        def of_job(job_id: str) -> list[dict[str, Any]]:
            return [e for e in errors() if tags(e).get("jobq.job_id") == job_id]

        await until(lambda: bool(of_job(doomed.job_id)) and bool(of_job("garbled")), 15, "error events")
        [failure] = of_job(doomed.job_id)
        assert tags(failure)["jobq.task"] == "permanent"
        assert str(tags(failure)["jobq.try"]) == "1"
        assert failure["exception"]["values"][-1]["type"] == "PermanentError"
        assert failure["contexts"]["trace"]["trace_id"] == producer.trace_id  # the trace crossed Redis
        await until(lambda: bool(of_job(private.job_id)), 15, "the timed-out job's event")
        assert "31337" not in orjson.dumps(collector.items).decode()  # payloads are not sent by default
        [garbled] = of_job("garbled")
        assert garbled["exception"]["values"][-1]["type"] == "SerializationError"
        assert not [e for e in errors() if "RetryLater" in orjson.dumps(e).decode()]  # retries are not errors

        def job_transactions() -> list[dict[str, Any]]:
            return [t for t in collector.of_type("transaction") if t.get("transaction") == "permanent"]

        await until(lambda: bool(job_transactions()), 15, "a transaction")
        [job_tx] = job_transactions()
        assert job_tx["contexts"]["trace"]["trace_id"] == producer.trace_id
        await until(
            lambda: (
                {"in_progress", "ok"}
                <= {c.get("status") for c in collector.of_type("check_in") if c.get("monitor_slug") == "every-second"}
            ),
            15,
            "cron check-ins",
        )
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)  # back to no client: Sentry off for later tests
