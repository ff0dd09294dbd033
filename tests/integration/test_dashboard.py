"""The dashboard end to end in headless Chromium, with live jobs running against a real worker and API."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from tests.dashboard_scenario import CHROMIUM, CHROMIUM_ARGS, TOKEN, live_system, populate
from worker.client.producer import Client
from worker.client.stats import queue_stats
from worker.settings import JobqSettings

if TYPE_CHECKING:
    from playwright.async_api import Dialog, Page


async def pause_and_resume_from_the_page(page: Page, client: Client, queue: str) -> None:
    """The Pause button asks first, pauses through the API and shows the badge; Resume takes it away."""
    dialogs: list[str] = []

    async def answer(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await (dialog.dismiss() if len(dialogs) == 1 else dialog.accept())  # the first is declined

    page.on("dialog", answer)
    toggle = page.locator("[data-testid=pause-toggle]")
    await toggle.click()
    assert len(dialogs) == 1
    assert (await toggle.text_content(), await toggle.is_enabled()) == ("Pause", True)
    assert await client.pause_of(queue) is None  # declined: nothing paused
    await toggle.focus()
    await page.keyboard.press("Enter")  # the keyboard works as well as the mouse
    await page.wait_for_selector("[data-testid=queue-paused]", state="visible", timeout=15_000)
    assert f'Pause queue "{queue}"?' in dialogs[1]
    pause = await client.pause_of(queue)
    assert pause is not None
    assert pause.by == "dashboard"
    assert await toggle.text_content() == "Resume"
    assert await toggle.get_attribute("aria-label") == f"Resume queue {queue}"
    row = page.locator(f"[data-testid=queue-row][data-queue='{queue}']")
    await row.locator("[data-testid=queue-row-paused]").wait_for(timeout=15_000)
    await row.locator("button[data-testid=queue-pause]").click()  # resuming asks nothing
    await page.wait_for_selector("[data-testid=queue-paused]", state="hidden", timeout=15_000)
    assert await client.pause_of(queue) is None
    assert len(dialogs) == 2


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
                for k in ("ready", "waiting", "running", "deferred", "dead", "workers")
            }
            # Running jobs hold leases: they are neither ready nor counted in the oldest ready age.
            assert shown == {"ready": "0", "waiting": "0", "running": "3", "deferred": "2", "dead": "1", "workers": "1"}
            assert (stats.ready, stats.waiting, stats.running, stats.deferred, stats.dead_letters, stats.workers) == (
                0, 0, 3, 2, 1, 1
            )  # fmt: skip
            assert not await page.is_visible("[data-testid=queue-paused]")
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
            await pause_and_resume_from_the_page(page, client, settings.queue_name)
            await browser.close()


async def test_dashboard_shows_a_workflows_steps_with_their_states(settings: JobqSettings, tmp_path: Path) -> None:
    """A real workflow run by a real worker: two members succeed, a step dead-letters, the one after it is
    cancelled; the page lists the workflow and draws its steps with those states."""
    if shutil.which("chromium") is None:
        pytest.fail("chromium is not installed; `make test` installs the Debian package chromium")
    from playwright.async_api import async_playwright

    from worker import WorkflowState, chain, group, step

    workflow_id = f"wf-{uuid.uuid4().hex[:8]}"
    with live_system(settings, tmp_path) as api_url:
        async with async_playwright() as p, Client(settings) as client:
            add, permanent = client.registry.get("add"), client.registry.get("permanent")
            flow = chain(
                group(step(add, {"a": 1, "b": 1}), step(add, {"a": 2, "b": 2})),
                step(permanent, {"note": "dashboard"}),
                step(add, {"a": 3, "b": 3}),
            )
            handle = await client.enqueue_workflow(flow, workflow_id=workflow_id)
            status = await handle.wait(timeout_s=30)
            assert status.state is WorkflowState.FAILED
            expected = {s.job_id: s.status.value for s in status.steps}
            assert sorted(expected.values()) == ["cancelled", "dead_lettered", "succeeded", "succeeded"]

            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = await browser.new_page(viewport={"width": 1400, "height": 1100})
            await page.goto(f"{api_url}/dashboard#token={TOKEN}")
            row = page.locator(f"[data-testid=workflow-row][data-workflow='{workflow_id}']")
            await row.wait_for(timeout=15_000)
            assert "failed" in (await row.text_content() or "")
            await row.locator("button[data-testid=workflow-open]").click()
            steps = page.locator("[data-testid=workflow-step]")
            await page.wait_for_function(
                "document.querySelectorAll('[data-testid=workflow-step]').length === 4", timeout=15_000
            )
            shown = {}
            for i in range(await steps.count()):
                item = steps.nth(i)
                shown[await item.get_attribute("data-job")] = await item.get_attribute("data-status")
                assert (await item.get_attribute("data-status") or "x") in (await item.text_content() or "")
            assert shown == expected
            assert "failed" in (await page.text_content("[data-testid=workflow-state]") or "")
            counts = await page.text_content("[data-testid=workflow-counts]") or ""
            for part in ("2 succeeded", "1 dead_lettered", "1 cancelled"):
                assert part in counts
            tree = await page.text_content("[data-testid=workflow-tree]") or ""
            assert "group of 2" in tree  # drawn as a tree: the chain's group, then its steps
            await page.screenshot(path=str(tmp_path / "workflow.png"), full_page=True)
            await browser.close()
