"""Webhook delivery: POST a JSON event to a URL, signed, retried the way receivers expect.

Each request carries::

    Content-Type: application/json
    X-Jobq-Delivery: <job id>              stable across retries: receivers deduplicate on it
    X-Jobq-Timestamp: <unix seconds>
    X-Jobq-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>" with JOBQ_WEBHOOK_SECRET>

Receivers check the signature with ``worker.verify_webhook`` (or its three lines in any language,
see :mod:`worker.protocol.signing`) and refuse timestamps more than five minutes off. A 2xx answer succeeds.
Connection errors, timeouts, 408, 425, 429 and 5xx are retried with backoff, honouring ``Retry-After``
(seconds or an HTTP date); any other 4xx is permanent: the job goes to the dead letters with the
status in the error.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from pydantic import BaseModel, Field, HttpUrl

from tasks.http import http_session
from worker import JobContext, PermanentError, RetryLater, RetryPolicy, sign_webhook, task

#: The longest Retry-After honoured; a receiver asking for more is retried after this.
MAX_RETRY_AFTER_S = 3600.0
RETRYABLE_STATUS = frozenset({408, 425, 429}) | frozenset(range(500, 600))


class WebhookIn(BaseModel):
    """One delivery: where, what event, the JSON data, and how long one attempt may take."""

    url: HttpUrl
    event: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(10.0, gt=0, le=120)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)


class WebhookOut(BaseModel):
    """A delivered webhook: the receiver's status, on which attempt, and how long that attempt took."""

    status: int
    attempts: int
    latency_ms: float
    delivery_id: str


class WebhookRetryable(Exception):
    """The receiver could not take the webhook now (5xx, 429, timeout, connection error)."""


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), MAX_RETRY_AFTER_S)


@task(
    timeout_s=150,
    retry=RetryPolicy(max_tries=8, backoff_base_s=2, backoff_factor=3, backoff_max_s=900, retry_on=(WebhookRetryable,)),
)
async def deliver_webhook(ctx: JobContext, payload: WebhookIn) -> WebhookOut:
    """POST ``payload.data`` as a signed JSON event to ``payload.url``."""
    secret = ctx.settings.webhook_secret
    if secret is None:
        raise PermanentError("JOBQ_WEBHOOK_SECRET is not set: refusing to send an unsigned webhook")
    body = orjson.dumps({"event": payload.event, "data": payload.data, "delivery_id": ctx.job_id})
    timestamp = int(ctx.clock())
    headers = {
        **payload.headers,
        "Content-Type": "application/json",
        "X-Jobq-Delivery": ctx.job_id,
        "X-Jobq-Timestamp": str(timestamp),
        "X-Jobq-Signature": sign_webhook(secret.get_secret_value().encode(), timestamp, body),
    }
    session = await ctx.resource(http_session)
    started = time.perf_counter()
    try:
        timeout = aiohttp.ClientTimeout(total=payload.timeout_s)
        async with session.post(str(payload.url), data=body, headers=headers, timeout=timeout) as response:
            status = response.status
            wait_s = retry_after_s(response.headers.get("Retry-After"), datetime.fromtimestamp(ctx.clock(), UTC))
            await response.read()
    except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise WebhookRetryable(f"{type(exc).__name__}: {exc or 'timed out'}") from exc
    latency_ms = (time.perf_counter() - started) * 1000
    if 200 <= status < 300:
        return WebhookOut(status=status, attempts=ctx.try_number, latency_ms=latency_ms, delivery_id=ctx.job_id)
    if status in RETRYABLE_STATUS:
        if wait_s is not None:
            raise RetryLater(wait_s, f"receiver answered {status}; Retry-After {wait_s:g}s")
        raise WebhookRetryable(f"receiver answered {status}")
    raise PermanentError(f"receiver answered {status}; not retried (only 408, 425, 429 and 5xx are)")
