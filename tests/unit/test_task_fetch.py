"""tasks.fetch against local HTTP servers that measure their own concurrency."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.harness import reply
from tests.unit.harness import Harness
from worker import DeadLetterStore, JobStatus, Outcome

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


async def run_until(h: Harness, done: Any, *, steps: int = 60) -> None:
    for _ in range(steps):
        await h.run_due()
        if await done():
            return
        h.clock.advance(1)
    raise AssertionError("the crawl did not finish")


async def test_crawl_fans_out_and_in_with_a_retried_and_a_failed_page(
    h: Harness, sites: list[tuple[Site, str]]
) -> None:
    sites[1][0].fail_first["flaky"] = 1  # 503 once, then fine
    urls = [f"{base}/p{i}" for i in range(5) for _, base in sites]
    urls += [f"{sites[1][1]}/flaky", f"{sites[2][1]}/missing"]
    crawl = await h.client.enqueue("crawl", {"urls": urls})
    await h.run_due()
    started = await crawl.result(timeout_s=5)
    assert started.pages == 22
    summary = h.client.job(started.summary_job_id, task="crawl_summary")

    async def finished() -> bool:
        return (await summary.status()).status is JobStatus.SUCCEEDED

    await run_until(h, finished)
    result = (await summary.wait(timeout_s=1)).unwrap()
    assert (result.pages, result.succeeded, result.failed) == (22, 21, 1)
    assert result.by_status == {"200": 21, "404": 1}
    assert [f.url for f in result.failures] == [f"{sites[2][1]}/missing"]
    flaky = h.client.job(f"{crawl.job_id}:20")  # the 21st page
    assert (await flaky.wait(timeout_s=1)).tries == 2  # retried once, counted once
    missing = await h.client.job(f"{crawl.job_id}:21").wait(timeout_s=1)
    assert missing.outcome is Outcome.DEAD_LETTERED
    dlq = DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=60)
    assert "server answered 404" in (await dlq.show(f"{crawl.job_id}:21")).message
    # A page re-run after a crash records nothing twice: the summary job exists once.
    assert await reply(h.redis.hlen(f"jobq:crawl:{crawl.job_id}:results")) == 22
