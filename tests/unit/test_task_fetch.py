"""tasks.fetch against local HTTP servers that measure their own concurrency."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tasks.fetch import CRAWL_ON_FAILURE, CrawlIn, CrawlSummary, crawl, crawl_workflow
from tests.unit.harness import Harness
from worker import (
    DeadLetterStore,
    InvalidPayload,
    JobContext,
    JobStatus,
    Outcome,
    PermanentError,
    WorkflowDefinitionError,
    WorkflowState,
)

BIG = bytes(range(256)) * 8192  # 2 MiB


class Site:
    """A local host that counts how many requests it serves at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.fail_first: dict[str, int] = {}

    async def page(self, request: web.Request) -> web.StreamResponse:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.01)
            name = request.match_info["name"]
            if self.fail_first.get(name, 0) > 0:
                self.fail_first[name] -= 1
                return web.Response(status=503)
            if name == "missing":
                return web.Response(status=404, text="no")
            if name == "big":
                response = web.StreamResponse()
                await response.prepare(request)
                for i in range(0, len(BIG), 65536):
                    await response.write(BIG[i : i + 65536])
                return response
            return web.Response(text=f"page {name}")
        finally:
            self.now -= 1


@pytest.fixture
async def sites() -> AsyncIterator[list[tuple[Site, str]]]:
    started = []
    for _ in range(4):
        site = Site()
        app = web.Application()
        app.router.add_get("/{name}", site.page)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        started.append((site, server))
    yield [(site, f"http://127.0.0.1:{server.port}") for site, server in started]
    for _, server in started:
        await server.close()


@pytest.fixture
def h(make_harness: Any) -> Harness:
    return make_harness(task_modules=["tasks"])  # type: ignore[no-any-return]


async def test_fetch_many_respects_the_per_host_limit(h: Harness, sites: list[tuple[Site, str]]) -> None:
    urls = [f"{base}/p{i}" for i in range(50) for _, base in sites]  # 200 URLs over 4 hosts
    handle = await h.client.enqueue("fetch_many", {"urls": urls, "per_host": 5})
    await h.run_due()
    results = (await handle.result(timeout_s=5)).results
    assert [r.url for r in results] == urls
    assert all(r.status == 200 and r.error is None for r in results)
    assert results[0].sha256 == hashlib.sha256(b"page p0").hexdigest()
    peaks = [site.peak for site, _ in sites]
    assert max(peaks) <= 5
    assert min(peaks) == 5  # and the limit was really used


async def test_oversize_responses_are_cut_at_the_cap(h: Harness, sites: list[tuple[Site, str]]) -> None:
    cap = 100_000
    handle = await h.client.enqueue("fetch_many", {"urls": [f"{sites[0][1]}/big"], "max_bytes": cap})
    await h.run_due()
    (result,) = (await handle.result(timeout_s=5)).results
    assert (result.status, result.size, result.truncated) == (200, cap, True)
    assert result.sha256 == hashlib.sha256(BIG[:cap]).hexdigest()


async def test_errors_are_reported_per_url(h: Harness, sites: list[tuple[Site, str]]) -> None:
    urls = [f"{sites[0][1]}/ok", "http://127.0.0.1:9/nothing-listens-here"]
    handle = await h.client.enqueue("fetch_many", {"urls": urls, "timeout_s": 2})
    await h.run_due()
    ok, refused = (await handle.result(timeout_s=5)).results
    assert (ok.status, ok.error) == (200, None)
    assert refused.status is None
    assert refused.error is not None
    assert "ClientConnectorError" in refused.error


REFUSED = "http://127.0.0.1:9/nothing-listens-here"  # the discard port: connection refused


async def run_until(h: Harness, done: Any, *, steps: int = 120) -> None:
    """Run what is due, a second of the injected clock at a time (pages back off between tries)."""
    for _ in range(steps):
        await h.run_due()
        if await done():
            return
        h.clock.advance(1)
    raise AssertionError("the crawl did not finish")


async def no_crawl_keys(h: Harness) -> bool:
    """The old fan-in's counter and result list are gone for good: the workflow does the fan-in."""
    return [k async for k in h.redis.scan_iter(match="jobq:crawl:*")] == []


async def test_crawl_runs_a_workflow_counting_a_retried_a_404_and_a_refused_page(
    h: Harness, sites: list[tuple[Site, str]]
) -> None:
    sites[1][0].fail_first["flaky"] = 1  # 503 once, then fine
    urls = [f"{base}/p{i}" for i in range(5) for _, base in sites]
    missing, flaky_url = f"{sites[2][1]}/missing", f"{sites[1][1]}/flaky"
    urls += [flaky_url, missing, REFUSED]
    started_job = await h.client.enqueue("crawl", {"urls": urls, "timeout_s": 2})
    await h.run_due()
    started = await started_job.result(timeout_s=5)
    assert (started.crawl_id, started.pages) == (started_job.job_id, 23)
    wf = h.client.workflow(started.crawl_id)
    summary = h.client.job(started.summary_job_id, task="crawl_summary")

    async def finished() -> bool:
        return (await summary.status()).status is JobStatus.SUCCEEDED

    await run_until(h, finished)
    done = await summary.wait(timeout_s=1)
    assert done.tries == 1  # one summary, run once
    result = done.unwrap()
    assert result.crawl_id == started.crawl_id
    assert (result.pages, result.succeeded, result.failed) == (23, 21, 2)
    assert result.by_status == {"200": 21, "404": 1, "error": 1}
    assert [f.url for f in result.failures] == [missing, REFUSED]  # in the crawl's URL order
    assert result.failures[0].status == 404
    assert result.failures[1].error is not None
    assert "ClientConnectorError" in result.failures[1].error
    assert result.bytes == sum(len(f"page p{i}") for i in range(5)) * 4 + len("page flaky") + len("no")

    status = await wf.status()
    pages = [s for s in status.steps if s.task == "fetch_page"]
    assert [s.task for s in status.steps].count("crawl_summary") == 1
    assert len(pages) == 23
    flaky = await h.client.job(pages[20].job_id).wait(timeout_s=1)
    assert flaky.tries == 2  # retried once, counted once
    answered_404 = await h.client.job(pages[21].job_id).wait(timeout_s=1)
    assert answered_404.outcome is Outcome.SUCCEEDED  # the server's answer is the page's result
    refused = await h.client.job(pages[22].job_id).wait(timeout_s=1)
    assert (refused.outcome, refused.tries) == (Outcome.DEAD_LETTERED, 4)
    dlq = DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=60)
    assert "ClientConnectorError" in (await dlq.show(pages[22].job_id)).message
    assert await no_crawl_keys(h)


async def test_a_crawl_starts_from_the_workflow_helper_and_needs_on_failure_continue(
    h: Harness, sites: list[tuple[Site, str]]
) -> None:
    urls = [f"{sites[0][1]}/a", REFUSED, f"{sites[3][1]}/b"]
    with pytest.raises(WorkflowDefinitionError, match="pages"):
        await h.client.enqueue_workflow(crawl_workflow(urls))  # a failed page would cancel the summary
    wf = await h.client.enqueue_workflow(crawl_workflow(urls, timeout_s=2), on_failure=CRAWL_ON_FAILURE)
    (summary,) = wf.last

    async def finished() -> bool:
        return (await summary.status()).status is JobStatus.SUCCEEDED

    await run_until(h, finished)
    result = await summary.result(timeout_s=1)
    assert isinstance(result, CrawlSummary)
    assert (result.crawl_id, result.pages, result.succeeded, result.failed) == (wf.workflow_id, 3, 2, 1)
    assert [f.url for f in result.failures] == [REFUSED]
    assert (await wf.wait(timeout_s=1, poll_s=0.01)).state is not WorkflowState.RUNNING


async def test_the_workflow_helper_refuses_bad_urls_before_anything_is_written(h: Harness) -> None:
    with pytest.raises(InvalidPayload, match="urls"):
        crawl_workflow(["not a url"])
    with pytest.raises(InvalidPayload, match="urls"):
        crawl_workflow([])


def crawl_ctx(h: Harness, job_id: str, *, try_number: int) -> JobContext:
    return JobContext(
        job_id, "crawl", try_number, 3, 0, datetime.now(UTC), 120.0, h.settings.queue_name, h.redis,
        services=h.worker.executor.services,
    )  # fmt: skip


async def test_a_rerun_of_the_crawl_task_enqueues_nothing_twice(h: Harness, sites: list[tuple[Site, str]]) -> None:
    payload = CrawlIn.model_validate({"urls": [f"{sites[0][1]}/a", f"{sites[0][1]}/b"]})
    first = await crawl.fn(crawl_ctx(h, "crawl-1", try_number=1), payload)
    again = await crawl.fn(crawl_ctx(h, "crawl-1", try_number=2), payload)  # its first try's reply was lost
    assert again == first
    wf = h.client.workflow("crawl-1")
    assert await wf.load()
    assert [j.job_id for j in wf.last] == [first.summary_job_id]
    assert len((await wf.status()).steps) == 3


async def test_a_crawl_whose_id_is_another_workflows_fails_for_good(h: Harness, sites: list[tuple[Site, str]]) -> None:
    await h.client.enqueue_workflow(crawl_workflow([f"{sites[0][1]}/a"]), workflow_id="taken", on_failure="continue")
    payload = CrawlIn.model_validate({"urls": [f"{sites[0][1]}/b"]})
    with pytest.raises(PermanentError, match="taken"):
        await crawl.fn(crawl_ctx(h, "taken", try_number=1), payload)
