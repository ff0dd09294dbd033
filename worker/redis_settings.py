"""The Redis connection's settings (``JOBQ_REDIS_*``): where Redis is, how to authenticate, TLS, Sentinel,
timeouts and the start-up safety check. :class:`~worker.settings.JobqSettings` starts with these fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from worker.setting_checks import checked_redis_url, checked_sentinels, split_commas, without_url_credentials

CommaList = Annotated[list[str], NoDecode]


class RedisSettings(BaseSettings):
    """The ``JOBQ_REDIS_*`` knobs; use :class:`~worker.settings.JobqSettings`, which has them all."""

    # --- Redis connection -------------------------------------------------------------------
    redis_url: str = Field(
        "redis://localhost:6379/0",
        description="Redis to use: `redis://host:port/db`, `rediss://` for TLS, or `unix:///path.sock`. "
        "A password in the URL is moved into JOBQ_REDIS_PASSWORD and never logged.",
    )
    redis_username: str | None = Field(None, description="ACL user name (overrides the URL's).")
    redis_password: SecretStr | None = Field(None, description="Password for AUTH or the ACL user (secret).")
    redis_tls_ca_file: Path | None = Field(None, description="CA bundle that signs the server's certificate.")
    redis_tls_cert_file: Path | None = Field(None, description="Client certificate for mutual TLS.")
    redis_tls_key_file: Path | None = Field(None, description="Private key of the client certificate.")
    redis_tls_verify: Literal["required", "optional", "none"] = Field(
        "required", description="Server certificate check: `required`, `optional` or `none`."
    )
    redis_tls_check_hostname: bool = Field(True, description="Check the server certificate's host name.")
    redis_sentinels: CommaList = Field(
        default_factory=list,
        description="Sentinel addresses `host:port,host:port`; when set, the master is found through them.",
    )
    redis_sentinel_master: str = Field("mymaster", description="Name of the master the sentinels watch.")
    redis_sentinel_password: SecretStr | None = Field(None, description="Password of the sentinels (secret).")
    redis_socket_timeout_s: float = Field(
        5.0, gt=0, description="Seconds a Redis command may take before the connection is dropped."
    )
    redis_connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for a Redis connection.")
    redis_safety_check: Literal["warn", "refuse", "off"] = Field(
        "warn",
        description="At worker start-up, check that Redis runs with `maxmemory-policy noeviction` and persistence "
        "on: `warn` logs what is unsafe, `refuse` exits 2 instead of starting, `off` skips the check.",
    )

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinels_from_commas(cls, value: Any) -> Any:
        return split_commas(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        return checked_redis_url(value)

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        return checked_sentinels(value)

    @model_validator(mode="before")
    @classmethod
    def _move_url_password(cls, data: Any) -> Any:
        """Keep secrets out of ``redis_url`` so the URL can be logged and shown safely."""
        return without_url_credentials(data)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``JOBQ_REDIS_SENTINELS`` as ``(host, port)`` pairs."""
        pairs = []
        for item in self.redis_sentinels:
            host, _, port = item.rpartition(":")
            pairs.append((host, int(port)))
        return pairs
