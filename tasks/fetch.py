"""Fetching URLs: many at once inside one job, or a crawl that runs one job per URL, then a summary.

``fetch_many`` runs the requests concurrently with ``asyncio.gather``, at most ``per_host`` at a time
per host (a semaphore each), every request under its own timeout and response-size cap.

A crawl is a workflow (:func:`crawl_workflow`): a chord of one ``fetch_page`` step per URL, then
``crawl_summary`` once with every page's outcome, in the URL order. It is enqueued atomically and with
``on_failure="continue"``, so a page that fails for good (dead-lettered) still lets the summary run and
count it as failed; the fan-in is the workflow engine's, exactly once. Across the whole fleet at most
:data:`CRAWL_PER_HOST` pages run per host at once (a distributed limit). The ``crawl`` task enqueues
that workflow from inside a job, under the crawl job's own id as the workflow id.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, Field, HttpUrl, model_validator

from tasks.http import http_session
from worker import (
    InvalidJobOptions,
    JobContext,
    Limit,
    PermanentError,
    RetryPolicy,
    StepOutcome,
    chord,
    group,
    step,
    task,
)

CHUNK_BYTES = 64 * 1024
CRAWL_PER_HOST = 4
#: How a crawl's workflow must be enqueued: a page that fails for good still lets the summary run.
CRAWL_ON_FAILURE = "continue"


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


# --- crawl: a workflow, a chord of pages then a summary -------------------------------------------


class CrawlIn(BaseModel):
    """URLs to crawl as one job each; the crawl's results are summarised once all have finished."""

    urls: list[HttpUrl] = Field(min_length=1, max_length=10_000)
    timeout_s: float = Field(10.0, gt=0, le=120)
    max_bytes: int = Field(1024 * 1024, ge=1, le=50 * 1024 * 1024)


class CrawlOut(BaseModel):
    """The crawl started: its workflow's id (the crawl job's id), how many pages, and the summary's job id."""

    crawl_id: str
    pages: int
    summary_job_id: str


class PageIn(BaseModel):
    """One page of a crawl."""

    url: HttpUrl
    timeout_s: float
    max_bytes: int


class SummaryIn(BaseModel):
    """The crawl's URLs and, in the same order, each page's outcome (its :class:`FetchResult`, or its error)."""

    urls: list[str]
    pages: list[StepOutcome]

    @model_validator(mode="after")
    def _one_outcome_per_url(self) -> Self:
        if len(self.pages) != len(self.urls):
            raise ValueError(f"pages has {len(self.pages)} outcomes for {len(self.urls)} urls")
        return self


class CrawlSummary(BaseModel):
    """The crawl's outcome once every page has finished for good."""

    crawl_id: str
    pages: int
    succeeded: int
    failed: int
    bytes: int
    by_status: dict[str, int]
    failures: list[FetchResult]


def crawl_workflow(
    urls: Sequence[str], *, timeout_s: float = 10.0, max_bytes: int = 1024 * 1024
) -> Any:  # a worker.chord(...): worker does not export its type
    """A crawl of ``urls`` as a workflow: enqueue it with
    ``client.enqueue_workflow(crawl_workflow(urls), on_failure=CRAWL_ON_FAILURE)``; the result of its last step
    (``handle.last[0]``) is the :class:`CrawlSummary`. Raises :class:`~worker.InvalidPayload` for bad URLs or limits.
    """
    return _crawl_chord(crawl.validate({"urls": list(urls), "timeout_s": timeout_s, "max_bytes": max_bytes}))


def _crawl_chord(payload: CrawlIn) -> Any:
    pages = (
        step(fetch_page, PageIn(url=url, timeout_s=payload.timeout_s, max_bytes=payload.max_bytes))
        for url in payload.urls
    )
    return chord(group(pages), step(crawl_summary, {"urls": [str(u) for u in payload.urls]}, into="pages"))


def _summary_step_id(crawl_id: str) -> str:
    """The job id of the summary of the crawl enqueued as workflow ``crawl_id`` (the chord's callback, path 0.1)."""
    return f"{crawl_id}.0.1"


@task(timeout_s=120, max_tries=3)
async def crawl(ctx: JobContext, payload: CrawlIn) -> CrawlOut:
    """Enqueue the crawl's workflow under this job's id: a re-run of this job (after a crash, or a reply lost)
    is refused the id and enqueues nothing twice. (A run that died between the staging and the activation of the
    workflow leaves it staged, so a re-run is refused too and the crawl never starts; it expires with its keys.)"""
    crawl_id = ctx.job_id
    try:
        started = await ctx.enqueue_workflow(_crawl_chord(payload), workflow_id=crawl_id, on_failure=CRAWL_ON_FAILURE)
    except InvalidJobOptions as exc:
        if exc.field != "workflow_id":
            raise
        if ctx.attempt == 1:  # the id is another workflow's: retrying would take it for this crawl's
            raise PermanentError(f"crawl {crawl_id}: {exc}") from None
        summary_job_id = _summary_step_id(crawl_id)  # an earlier run of this job enqueued it
    else:
        summary_job_id = started.last[0].job_id
    return CrawlOut(crawl_id=crawl_id, pages=len(payload.urls), summary_job_id=summary_job_id)


class PageRetryable(Exception):
    """The page could not be fetched now (connection error, timeout, 5xx): try again later."""


@task(
    timeout_s=150,
    limit=Limit("crawl-host", CRAWL_PER_HOST, key=lambda p: host_of(str(p.url))),
    retry=RetryPolicy(max_tries=4, backoff_base_s=1, backoff_max_s=60, retry_on=(PageRetryable,)),
)
async def fetch_page(ctx: JobContext, payload: PageIn) -> FetchResult:
    """Fetch one page of a crawl. A server's answer is the page's result, whatever its status (a 4xx at once, a
    5xx once the tries are spent); a page with no answer on its last try fails for good (dead-lettered)."""
    session = await ctx.resource(http_session)
    result = await fetch_one(session, str(payload.url), timeout_s=payload.timeout_s, max_bytes=payload.max_bytes)
    retryable = result.error is not None or (result.status is not None and result.status >= 500)
    if retryable and not ctx.is_last_try:
        raise PageRetryable(result.error or f"server answered {result.status}")
    if result.error is not None:
        raise PermanentError(result.error)
    return result


def _page_result(url: str, outcome: StepOutcome) -> FetchResult:
    """A page's result: what its step returned, or (it failed for good) its error."""
    if outcome.ok:
        return FetchResult.model_validate(outcome.value)
    error = outcome.error or {}
    message = str(error.get("message") or error.get("type") or "failed")
    return FetchResult(url=url, status=None, size=0, sha256=None, elapsed_ms=0.0, error=message)


def page_ok(result: FetchResult) -> bool:
    """Whether a crawled page counts as fetched: an answer below 400, read without error."""
    return result.error is None and result.status is not None and result.status < 400


@task(timeout_s=120, max_tries=3)
async def crawl_summary(ctx: JobContext, payload: SummaryIn) -> CrawlSummary:
    """Aggregate the outcomes of a finished crawl's pages (given in the URL order)."""
    results = [_page_result(url, outcome) for url, outcome in zip(payload.urls, payload.pages, strict=True)]
    failures = [r for r in results if not page_ok(r)]
    by_status: Counter[str] = Counter(str(r.status) if r.status is not None else "error" for r in results)
    return CrawlSummary(
        crawl_id=ctx.workflow_id or ctx.job_id,
        pages=len(results),
        succeeded=len(results) - len(failures),
        failed=len(failures),
        bytes=sum(r.size for r in results),
        by_status=dict(sorted(by_status.items())),
        failures=failures,
    )
