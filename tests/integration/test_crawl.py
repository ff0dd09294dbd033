"""The built-in crawl with real worker processes and a real local HTTP server: a workflow of one page job per
URL, then one summary that counts a 404 and a refused page (retries exhausted) as failed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tasks.fetch import CRAWL_ON_FAILURE, CRAWL_PER_HOST, CrawlOut, CrawlSummary, crawl, crawl_summary, crawl_workflow
from tests.integration.harness import StartWorker
from worker import JobStatus, Outcome, WorkflowState
from worker.client.producer import Client
from worker.process.embedded import free_port

ENV = {"JOBQ_TASK_MODULES": "tasks.fetch", "JOBQ_MAX_JOBS": "20"}


class Site:
    """A local web site that counts the requests for each page and how many it serves at once."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.now = 0
        self.peak = 0
        self.fail_first: dict[str, int] = {}
        self.url = ""

    async def page(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.requests[name] += 1
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.02)  # long enough for the per-host limit to be reached
            if self.fail_first.get(name, 0) > 0:
                self.fail_first[name] -= 1
                return web.Response(status=503)
            if name == "missing":
                return web.Response(status=404, text="no")
            return web.Response(text=f"page {name}")
        finally:
            self.now -= 1


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    served = Site()
    app = web.Application()
    app.router.add_get("/{name}", served.page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    served.url = f"http://127.0.0.1:{port}"
    yield served
    await runner.cleanup()


def refused_url() -> str:
    """A loopback URL nothing listens on: every try is refused."""
    return f"http://127.0.0.1:{free_port()}/gone"


async def test_the_crawl_task_runs_its_pages_over_two_workers_and_summarises_once(
    client: Client, start_worker: StartWorker, site: Site
) -> None:
    site.fail_first["flaky"] = 1  # 503 once, then fine
    refused = refused_url()
    urls = [f"{site.url}/p{i}" for i in range(40)] + [f"{site.url}/flaky", f"{site.url}/missing", refused]
    started_job = await client.enqueue(crawl, {"urls": urls, "timeout_s": 5})
    for _ in range(2):
        start_worker(**ENV)
    started = CrawlOut.model_validate((await started_job.wait(timeout_s=60)).unwrap())
    assert (started.crawl_id, started.pages) == (started_job.job_id, 43)

    done = await client.job(started.summary_job_id, task=crawl_summary).wait(timeout_s=120)
    assert (done.outcome, done.tries, done.interruptions) == (Outcome.SUCCEEDED, 1, 0)  # one summary, run once
    summary = done.unwrap()
    assert isinstance(summary, CrawlSummary)
    assert summary.crawl_id == started.crawl_id
    assert (summary.pages, summary.succeeded, summary.failed) == (43, 41, 2)
    assert summary.by_status == {"200": 41, "404": 1, "error": 1}
    assert [f.url for f in summary.failures] == [f"{site.url}/missing", refused]
    assert summary.failures[1].error is not None
    assert "ClientConnectorError" in summary.failures[1].error
    # Every page was fetched once (the flaky one twice), never more than the fleet-wide limit per host at once.
    assert site.requests == Counter({**{f"p{i}": 1 for i in range(40)}, "flaky": 2, "missing": 1})
    assert site.peak <= CRAWL_PER_HOST

    status = await client.workflow(started.crawl_id).wait(timeout_s=30)
    assert [s.task for s in status.steps].count("crawl_summary") == 1
    refused_step = status.steps[42]
    assert (refused_step.task, refused_step.status) == ("fetch_page", JobStatus.DEAD_LETTERED)
    assert (await client.job(refused_step.job_id).wait(timeout_s=5)).tries == 4  # its retries were spent
    assert [k async for k in client.redis.scan_iter(match="jobq:crawl:*")] == []  # no hand-made fan-in keys


async def test_a_crawl_enqueued_as_a_workflow_reports_a_refused_page_as_failed(
    client: Client, start_worker: StartWorker, site: Site
) -> None:
    refused = refused_url()
    urls = [f"{site.url}/a", refused, f"{site.url}/b"]
    wf = await client.enqueue_workflow(crawl_workflow(urls, timeout_s=5), on_failure=CRAWL_ON_FAILURE)
    start_worker(**ENV)
    (last,) = wf.last
    summary = (await client.job(last.job_id, task=crawl_summary).wait(timeout_s=120)).unwrap()
    assert (summary.crawl_id, summary.pages, summary.succeeded, summary.failed) == (wf.workflow_id, 3, 2, 1)
    assert [f.url for f in summary.failures] == [refused]
    assert summary.bytes == len("page a") + len("page b")
    status = await wf.wait(timeout_s=30)
    assert status.state is not WorkflowState.RUNNING
    assert status.step(last.job_id).status is JobStatus.SUCCEEDED
