"""The dashboard end to end in headless Chromium, with live jobs running against a real worker and API."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import redis

from tests.dashboard_scenario import CHROMIUM, CHROMIUM_ARGS, TOKEN, live_system, populate
from worker.client.producer import Client
from worker.client.stats import queue_stats
from worker.settings import JobqSettings


async def test_dashboard_shows_live_numbers_and_replays_a_dead_letter(settings: JobqSettings, tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.fail("chromium is not installed; `make test` installs the Debian package chromium")
    from playwright.async_api import async_playwright

    gate = uuid.uuid4().hex[:8]
    with live_system(settings, tmp_path) as api_url:
        jobs = await populate(settings, gate)
        async with async_playwright() as p, Client(settings) as client:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(f"{api_url}/dashboard#token={TOKEN}")
            await page.wait_for_selector("body[data-loaded=yes]", timeout=15_000)
            stats = await queue_stats(client.redis, settings.queue_name)
            shown = {
                k: await page.text_content(f"[data-testid=queue-{k}]")
                for k in ("ready", "running", "deferred", "dead", "workers")
            }
            # Running jobs hold leases: they are neither ready nor counted in the oldest ready age.
            assert shown == {"ready": "0", "running": "3", "deferred": "2", "dead": "1", "workers": "1"}
            assert (stats.ready, stats.running, stats.deferred, stats.dead_letters, stats.workers) == (0, 3, 2, 1, 1)
            assert (stats.oldest_ready_age_s, await page.text_content("[data-testid=queue-oldest]")) == (0.0, "0 s")
            assert await page.locator("[data-testid=running-row]").count() == 3
            running_text = await page.text_content("[data-testid=running]") or ""
            assert all(job_id in running_text for job_id in jobs["running"])
            [dead] = jobs["dead"]
            row = page.locator(f"[data-testid=dead-row][data-job='{dead}']")
            assert "gate" in (await row.text_content() or "")
            r = redis.Redis.from_url(settings.redis_url)
            r.set(f"probe:gate:{gate}", 1)  # the fix is deployed
            r.close()
            await page.click(f"button[data-testid=replay][data-job='{dead}']")
            await page.wait_for_selector(f"[data-testid=dead-row][data-job='{dead}']", state="detached", timeout=15_000)
            result = await client.job(dead).wait(timeout_s=15)
            assert (result.success, result.value, result.tries) == (True, "passed", 1)
            await page.wait_for_function(
                "document.querySelector('[data-testid=queue-dead]').textContent === '0'", timeout=15_000
            )
            await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert (tmp_path / "dashboard.png").stat().st_size > 10_000
            await browser.close()
