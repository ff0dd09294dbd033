"""Fetching URLs: many at once inside one job, or a crawl that fans out one job per URL and fans in.

``fetch_many`` runs the requests concurrently with ``asyncio.gather``, at most ``per_host`` at a time
per host (a semaphore each), every request under its own timeout and response-size cap.

``crawl`` enqueues one ``fetch_page`` job per URL (job ids ``<crawl id>:<n>``); across the whole fleet
at most :data:`CRAWL_PER_HOST` of them run per host at once (a distributed limit). Each page records
its final result (success, or the error of its last try) in ``jobq:crawl:<crawl id>:results``; whichever
page sees the last result arrive enqueues ``crawl_summary`` under the fixed id ``<crawl id>:summary``,
which aggregates. Retried pages record only their final result, and a page re-run after a crash finds
its result already recorded, so the summary always counts each URL once.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Awaitable
from typing import cast
from urllib.parse import urlsplit

import aiohttp
import orjson
from pydantic import BaseModel, Field, HttpUrl

from tasks.http import http_session
from worker import JobContext, JobRequest, Limit, PermanentError, RetryPolicy, task

CHUNK_BYTES = 64 * 1024
CRAWL_PER_HOST = 4
CRAWL_KEEP_S = 7 * 86400


class FetchResult(BaseModel):
    """One URL: its status (None when no answer), bytes read, their SHA-256, time taken, and any error."""

    url: str
    status: int | None
    size: int
    sha256: str | None
    elapsed_ms: float
    truncated: bool = False
    error: str | None = None


class FetchManyIn(BaseModel):
    """URLs to fetch in one job, how many at once per host, and the limits of each request."""

    urls: list[HttpUrl] = Field(min_length=1, max_length=1000)
    per_host: int = Field(5, ge=1, le=100)
    timeout_s: float = Field(10.0, gt=0, le=120)
    max_bytes: int = Field(1024 * 1024, ge=1, le=50 * 1024 * 1024)


class FetchManyOut(BaseModel):
    """The results, in the order of the URLs."""

    results: list[FetchResult]


async def fetch_one(session: aiohttp.ClientSession, url: str, *, timeout_s: float, max_bytes: int) -> FetchResult:
    """GET ``url`` and read at most ``max_bytes`` of its body; errors are reported, not raised."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    size, truncated, status = 0, False, None
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            status = response.status
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                room = max_bytes - size
                if len(chunk) > room:
                    digest.update(chunk[:room])
                    size, truncated = max_bytes, True
                    break  # leaving the block closes the connection: the rest is never downloaded
                digest.update(chunk)
                size += len(chunk)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return FetchResult(
            url=url, status=status, size=size, sha256=None, elapsed_ms=_ms_since(started),
            error=f"{type(exc).__name__}: {exc or 'timed out'}",
        )  # fmt: skip
    return FetchResult(
        url=url, status=status, size=size, sha256=digest.hexdigest(), elapsed_ms=_ms_since(started),
        truncated=truncated,
    )  # fmt: skip


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def host_of(url: str) -> str:
    """The host a URL counts against for per-host limits (with its port)."""
    return urlsplit(url).netloc.lower()


@task(timeout_s=600, max_tries=3)
async def fetch_many(ctx: JobContext, payload: FetchManyIn) -> FetchManyOut:
    """Fetch every URL concurrently, at most ``per_host`` at once per host."""
    session = await ctx.resource(http_session)
    urls = [str(u) for u in payload.urls]
    gates: dict[str, asyncio.Semaphore] = {}
    done = 0

    async def limited(url: str) -> FetchResult:
        nonlocal done
        gate = gates.setdefault(host_of(url), asyncio.Semaphore(payload.per_host))
        async with gate:
            result = await fetch_one(session, url, timeout_s=payload.timeout_s, max_bytes=payload.max_bytes)
        done += 1
        if done % 50 == 0:
            await ctx.report_progress(done / len(urls), f"{done} of {len(urls)} fetched")
        return result

    return FetchManyOut(results=list(await asyncio.gather(*(limited(u) for u in urls))))


# --- crawl: fan-out, fan-in ---------------------------------------------------------------------


class CrawlIn(BaseModel):
    """URLs to crawl as one job each; the crawl's results are summarised once all have finished."""

    urls: list[HttpUrl] = Field(min_length=1, max_length=10_000)
    timeout_s: float = Field(10.0, gt=0, le=120)
    max_bytes: int = Field(1024 * 1024, ge=1, le=50 * 1024 * 1024)


class CrawlOut(BaseModel):
    """The crawl started: how many page jobs, and the job id whose result will be the summary."""

    crawl_id: str
    pages: int
    summary_job_id: str


class PageIn(BaseModel):
    """One page of a crawl."""

    crawl_id: str
    url: HttpUrl
    timeout_s: float
    max_bytes: int


class SummaryIn(BaseModel):
    """Which crawl to summarise."""

    crawl_id: str


class CrawlSummary(BaseModel):
    """The crawl's outcome once every page has finished for good."""

    crawl_id: str
    pages: int
    succeeded: int
    failed: int
    bytes: int
    by_status: dict[str, int]
    failures: list[FetchResult]


def _results_key(crawl_id: str) -> str:
    return f"jobq:crawl:{crawl_id}:results"


def _total_key(crawl_id: str) -> str:
    return f"jobq:crawl:{crawl_id}:total"


@task(timeout_s=120, max_tries=3)
async def crawl(ctx: JobContext, payload: CrawlIn) -> CrawlOut:
    """Fan out one ``fetch_page`` job per URL (idempotent: a re-run enqueues nothing twice)."""
    crawl_id = ctx.job_id
    await ctx.redis.set(_total_key(crawl_id), len(payload.urls), ex=CRAWL_KEEP_S)
    pages = [
        JobRequest(
            fetch_page,
            PageIn(crawl_id=crawl_id, url=url, timeout_s=payload.timeout_s, max_bytes=payload.max_bytes),
            job_id=f"{crawl_id}:{n}",
        )
        for n, url in enumerate(payload.urls)
    ]
    await ctx.enqueue_many(pages)
    return CrawlOut(crawl_id=crawl_id, pages=len(payload.urls), summary_job_id=f"{crawl_id}:summary")


class PageRetryable(Exception):
    """The page could not be fetched now (connection error, timeout, 5xx): try again later."""


@task(
    timeout_s=150,
    limit=Limit("crawl-host", CRAWL_PER_HOST, key=lambda p: host_of(str(p.url))),
    retry=RetryPolicy(max_tries=4, backoff_base_s=1, backoff_max_s=60, retry_on=(PageRetryable,)),
)
async def fetch_page(ctx: JobContext, payload: PageIn) -> FetchResult:
    """Fetch one page of a crawl and record its final result for the summary."""
    session = await ctx.resource(http_session)
    result = await fetch_one(session, str(payload.url), timeout_s=payload.timeout_s, max_bytes=payload.max_bytes)
    retryable = result.error is not None or (result.status is not None and result.status >= 500)
    if retryable and not ctx.is_last_try:
        raise PageRetryable(result.error or f"server answered {result.status}")
    await _record(ctx, payload.crawl_id, result)
    if result.error is not None or (result.status is not None and result.status >= 400):
        raise PermanentError(result.error or f"server answered {result.status}")
    return result


async def _record(ctx: JobContext, crawl_id: str, result: FetchResult) -> None:
    """Record a page's final result (once), and enqueue the summary when it was the last one missing."""
    results, total = _results_key(crawl_id), _total_key(crawl_id)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.hsetnx(results, result.url, result.model_dump_json())
        pipe.expire(results, CRAWL_KEEP_S)
        pipe.hlen(results)
        pipe.get(total)
        _, _, recorded, expected = await pipe.execute()
    if expected is not None and recorded >= int(expected):
        await ctx.enqueue(crawl_summary, SummaryIn(crawl_id=crawl_id), job_id=f"{crawl_id}:summary")


@task(timeout_s=120, max_tries=3)
async def crawl_summary(ctx: JobContext, payload: SummaryIn) -> CrawlSummary:
    """Aggregate the recorded results of a finished crawl."""
    raw = await cast("Awaitable[dict[bytes, bytes]]", ctx.redis.hgetall(_results_key(payload.crawl_id)))
    results = [FetchResult.model_validate(orjson.loads(v)) for v in raw.values()]
    ok = [r for r in results if r.error is None and r.status is not None and r.status < 400]
    by_status: Counter[str] = Counter(str(r.status) if r.status is not None else "error" for r in results)
    failures = sorted((r for r in results if r not in ok), key=lambda r: r.url)
    return CrawlSummary(
        crawl_id=payload.crawl_id,
        pages=len(results),
        succeeded=len(ok),
        failed=len(results) - len(ok),
        bytes=sum(r.size for r in results),
        by_status=dict(sorted(by_status.items())),
        failures=failures,
    )
