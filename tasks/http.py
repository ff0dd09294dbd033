"""The HTTP client shared by every job of a worker: one aiohttp session, opened on first use."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from worker import JobqSettings, resource

USER_AGENT = "jobq/0.1 (+https://github.com/jobq)"


@resource
async def http_session(settings: JobqSettings) -> AsyncIterator[aiohttp.ClientSession]:
    """One session per worker: its connection pool is shared by all jobs and closed at shutdown."""
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT}) as session:
        yield session
