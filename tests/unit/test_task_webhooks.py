"""tasks.webhooks against a real local HTTP receiver that checks every signature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tasks.webhooks import retry_after_s
from tests.unit.harness import Harness
from worker import DeadLetterStore, JobStatus, Outcome, sign_webhook, verify_webhook

SECRET = "whsec-test"


class Receiver:
    """Answers with a scripted list of (status, headers); records what it got and whether it was authentic."""

    def __init__(self, clock: Any) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[dict[str, Any]] = []
        self._clock = clock

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        authentic = verify_webhook(
            SECRET.encode(),
            request.headers.get("X-Jobq-Timestamp", ""),
            body,
            request.headers.get("X-Jobq-Signature", ""),
            now=self._clock(),
        )
        self.received.append(
            {"authentic": authentic, "delivery": request.headers["X-Jobq-Delivery"], **orjson.loads(body)}
        )
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.Response(status=status if authentic else 401, headers=headers)


@pytest.fixture
async def receiver(harness_with_secret: Harness) -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver(harness_with_secret.clock)
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield r, f"http://127.0.0.1:{server.port}/hook"
    await server.close()


@pytest.fixture
def harness_with_secret(make_harness: Any) -> Harness:
    return make_harness(task_modules=["tasks"], webhook_secret=SECRET)  # type: ignore[no-any-return]


async def test_signed_delivery_succeeds(harness_with_secret: Harness, receiver: tuple[Receiver, str]) -> None:
    h, (r, url) = harness_with_secret, receiver
    handle = await h.client.enqueue("deliver_webhook", {"url": url, "event": "order.paid", "data": {"id": 7}})
    await h.run_due()
    result = await handle.wait(timeout_s=2)
    delivered = result.unwrap()
    assert (delivered.status, delivered.attempts, delivered.delivery_id) == (200, 1, handle.job_id)
    assert r.received == [
        {
            "authentic": True,
            "delivery": handle.job_id,
            "event": "order.paid",
            "data": {"id": 7},
            "delivery_id": handle.job_id,
        }
    ]


async def test_503_then_200_succeeds_on_the_second_try(
    harness_with_secret: Harness, receiver: tuple[Receiver, str]
) -> None:
    h, (r, url) = harness_with_secret, receiver
    r.script = [(503, {})]
    handle = await h.client.enqueue("deliver_webhook", {"url": url, "event": "e"})
    await h.run_due()
    assert (await handle.status()).status is JobStatus.RETRYING
    h.clock.advance(2)  # the task's backoff ceiling after try 1 (the harness draws the ceiling)
    await h.run_due()
    result = await handle.wait(timeout_s=2)
    assert (result.success, result.unwrap().attempts) == (True, 2)
    assert [x["delivery"] for x in r.received] == [handle.job_id] * 2  # the same id for deduplication


@pytest.mark.parametrize("header", ["7", "Thu, 15 Jan 2027 08:00:07 GMT"])
async def test_retry_after_is_honoured(
    harness_with_secret: Harness, receiver: tuple[Receiver, str], header: str
) -> None:
    h, (r, url) = harness_with_secret, receiver
    r.script = [(429, {"Retry-After": header})]
    handle = await h.client.enqueue("deliver_webhook", {"url": url, "event": "e"})
    await h.run_due()
    score = await h.redis.zscore(h.settings.queue_name, handle.job_id)
    assert score is not None
    assert abs(score - (h.clock.ms() + 7000)) <= 1000
    h.clock.advance(6)
    assert await h.run_due() == 0  # not before the receiver asked
    h.clock.advance(1.5)
    await h.run_due()
    assert (await handle.wait(timeout_s=2)).success


async def test_404_is_dead_lettered_with_the_status(
    harness_with_secret: Harness, receiver: tuple[Receiver, str]
) -> None:
    h, (r, url) = harness_with_secret, receiver
    r.script = [(404, {})]
    handle = await h.client.enqueue("deliver_webhook", {"url": url, "event": "e"})
    await h.run_due()
    result = await handle.wait(timeout_s=2)
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 1)
    entry = await DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=60).show(handle.job_id)
    assert entry.error_type == "worker.errors.PermanentError"
    assert "receiver answered 404" in entry.message


async def test_unreachable_receiver_is_retried(harness_with_secret: Harness) -> None:
    handle = await harness_with_secret.client.enqueue(
        "deliver_webhook", {"url": "http://127.0.0.1:9/hook", "event": "e", "timeout_s": 1}
    )
    await harness_with_secret.run_due()
    info = await handle.status()
    assert info.status is JobStatus.RETRYING
    assert info.last_error is not None
    assert info.last_error.error_type == "tasks.webhooks.WebhookRetryable"


async def test_without_a_secret_nothing_unsigned_is_sent(make_harness: Any, receiver: tuple[Receiver, str]) -> None:
    h = make_harness(task_modules=["tasks"])
    r, url = receiver
    handle = await h.client.enqueue("deliver_webhook", {"url": url, "event": "e"})
    await h.run_due()
    result = await handle.wait(timeout_s=2)
    assert result.outcome is Outcome.DEAD_LETTERED
    assert "JOBQ_WEBHOOK_SECRET is not set" in (result.error.message if result.error else "")
    assert r.received == []


def test_signature_checks() -> None:
    body = b'{"event":"e"}'
    header = sign_webhook(b"k", 1000, body)
    assert header.startswith("v1=")
    assert verify_webhook(b"k", "1000", body, header, now=1000)
    assert not verify_webhook(b"other", "1000", body, header, now=1000)
    assert not verify_webhook(b"k", "1000", body + b" ", header, now=1000)
    assert not verify_webhook(b"k", "1000", body, header, now=1000 + 301)  # stale: replay refused
    assert not verify_webhook(b"k", "soon", body, header, now=1000)


def test_retry_after_parsing() -> None:
    from datetime import UTC, datetime

    now = datetime(2027, 1, 15, 8, 0, 0, tzinfo=UTC)
    assert retry_after_s("120") == 120
    assert retry_after_s("Fri, 15 Jan 2027 08:01:00 GMT", now) == 60
    assert retry_after_s("999999") == 3600  # capped
    assert retry_after_s("tomorrow") is None
    assert retry_after_s(None) is None
