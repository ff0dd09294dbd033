"""Redis connections built from the settings: TLS, ACL, Sentinel, timeouts and keep-alive.

arq's own ``create_pool`` sets no socket timeout or keep-alive, so a half-open connection can hang
a worker; every connection jobq opens goes through :func:`create_redis` instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast
from urllib.parse import urlsplit

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import Connection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.protocol.fast_send import FAST_SEND
from worker.protocol.serialization import EnvelopeCodec
from worker.settings import JobqSettings

logger = logging.getLogger("jobq.connection")


def codec_for(settings: JobqSettings) -> EnvelopeCodec:
    """The envelope codec the settings ask for (signed when ``JOBQ_SIGNING_KEY`` is set)."""
    key = settings.signing_key.get_secret_value().encode() if settings.signing_key else None
    return EnvelopeCodec(key, accept_unbound=settings.signing_accept_unbound)


def _tls_kwargs(settings: JobqSettings) -> dict[str, Any]:
    return {
        "ssl_ca_certs": str(settings.redis_tls_ca_file) if settings.redis_tls_ca_file else None,
        "ssl_certfile": str(settings.redis_tls_cert_file) if settings.redis_tls_cert_file else None,
        "ssl_keyfile": str(settings.redis_tls_key_file) if settings.redis_tls_key_file else None,
        # redis-py's asyncio SSL context accepts only the string form ("required", "optional", "none").
        "ssl_cert_reqs": settings.redis_tls_verify,
        "ssl_check_hostname": settings.redis_tls_check_hostname and settings.redis_tls_verify != "none",
    }


def connection_kwargs(settings: JobqSettings) -> dict[str, Any]:
    """Keyword arguments for every Redis connection jobq opens."""
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_keepalive": True,
        # Short in-command retries ride out a dropped connection; longer outages surface as errors.
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        # No health_check_interval: with redis-py 5.3 a connection dropped during its handshake then
        # recurses without end (PING -> reconnect -> handshake -> PING). Keep-alive and timeouts cover it.
    }
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_password:
        kwargs["password"] = settings.redis_password.get_secret_value()
    return kwargs


def create_redis(settings: JobqSettings, codec: EnvelopeCodec | None = None) -> ArqRedis:
    """An :class:`~arq.connections.ArqRedis` for the configured Redis; connects lazily."""
    codec = codec or codec_for(settings)
    kwargs = connection_kwargs(settings)
    url = urlsplit(settings.redis_url)
    if url.scheme == "rediss":
        kwargs.update(_tls_kwargs(settings))
    if settings.redis_sentinels:
        redis = _sentinel_master(settings, kwargs, tls=url.scheme == "rediss")
    else:
        # As ConnectionPool.from_url, with connections that send without a task per command (fast_send).
        options = {**kwargs, **parse_url(settings.redis_url)}
        options["connection_class"] = FAST_SEND[options.get("connection_class", Connection)]
        pool = ConnectionPool(**options)
        redis = ArqRedis(pool_or_conn=pool)
    redis.job_serializer = codec.dumps
    redis.job_deserializer = codec.loads
    redis.default_queue_name = settings.queue_name
    redis.expires_extra_ms = int(settings.job_expires_s * 1000)
    return redis


def _sentinel_master(settings: JobqSettings, kwargs: dict[str, Any], *, tls: bool) -> ArqRedis:
    db = urlsplit(settings.redis_url).path.lstrip("/")
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
    }
    if settings.redis_sentinel_password:
        sentinel_kwargs["password"] = settings.redis_sentinel_password.get_secret_value()
    if tls:
        kwargs["ssl"] = True
        sentinel_kwargs.update(ssl=True, **_tls_kwargs(settings))
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py's Sentinel is untyped
        settings.sentinel_addresses, sentinel_kwargs=sentinel_kwargs, **kwargs
    )
    managed = FAST_SEND[SentinelManagedSSLConnection if tls else SentinelManagedConnection]
    master = sentinel.master_for(
        settings.redis_sentinel_master, redis_class=ArqRedis, db=int(db or 0), connection_class=managed
    )
    return cast(ArqRedis, master)


async def close_redis(redis: ArqRedis) -> None:
    """Close ``redis`` and its pool, and the connections to the sentinels when it found its master through them."""
    await redis.aclose(close_connection_pool=True)
    manager = getattr(redis.connection_pool, "sentinel_manager", None)
    for sentinel_client in getattr(manager, "sentinels", ()):
        await sentinel_client.aclose()


async def wait_for_redis(redis: ArqRedis, *, attempts: int = 10, delay_s: float = 0.5) -> None:
    """PING until Redis answers, logging each failure; re-raise after ``attempts`` failures.

    Refused credentials or permissions are raised at once: waiting cannot fix them.
    """
    for attempt in range(1, attempts + 1):
        try:
            await redis.ping()
            return
        except (AuthenticationError, NoPermissionError):
            raise
        except (RedisError, OSError) as exc:
            if attempt == attempts:
                raise
            logger.warning("redis not reachable (%s: %s); retry %d of %d", type(exc).__name__, exc, attempt, attempts)
            await asyncio.sleep(delay_s)
