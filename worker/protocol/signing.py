"""Webhook signatures: how jobq signs what it sends, and how a receiver checks it.

``X-Jobq-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with ``X-Jobq-Timestamp: <unix s>``.
In any language: recompute the HMAC over the timestamp header, a dot and the raw body, compare in
constant time, and refuse timestamps more than a few minutes off (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_VERSION = "v1"


def sign_webhook(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Jobq-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_webhook(
    secret: bytes, timestamp: str, body: bytes, signature: str, *, now: float | None = None, tolerance_s: float = 300
) -> bool:
    """Whether a received webhook is authentic and fresh."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign_webhook(secret, sent_at, body), signature)
