"""Live data for the dashboard: running, deferred and dead-lettered jobs, a worker and the API.

Used by the end-to-end test and by ``make dashboard-shot`` (``python -m tests.dashboard_scenario``).
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from worker.client.producer import Client, JobRequest
from worker.process.embedded import EmbeddedRedis, free_port
from worker.process.processes import stop_process
from worker.settings import JobqSettings

ROOT = Path(__file__).resolve().parents[1]
JOBQ = str(Path(sys.executable).parent / "jobq")
TOKEN = "dashboard-test-token"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def env_for(settings: JobqSettings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    env.update(
        PYTHONPATH=str(ROOT),
        JOBQ_REDIS_URL=settings.redis_url,
        JOBQ_QUEUE_NAME=settings.queue_name,
        JOBQ_TASK_MODULES="tests.sample_tasks",
        JOBQ_POLL_DELAY_S="0.05",
        JOBQ_API_TOKEN=TOKEN,
        JOBQ_HEALTH_INTERVAL_S="0.5",
        **extra,
    )
    return env


def wait_for(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def live_system(settings: JobqSettings, logs: Path) -> Iterator[str]:
    """A worker and the API on ``settings``; yields the API's base URL."""
    api_port = free_port()
    env = env_for(settings)
    with (logs / "worker.log").open("wb") as worker_log, (logs / "api.log").open("wb") as api_log:
        worker = subprocess.Popen([JOBQ, "worker"], env=env, cwd=ROOT, stderr=worker_log)
        api = subprocess.Popen(
            [JOBQ, "api", "--port", str(api_port)], env=env, cwd=ROOT, stdout=api_log, stderr=subprocess.STDOUT
        )
        try:
            r = redis.Redis.from_url(settings.redis_url)
            wait_for(lambda: r.exists(f"jobq:worker:{socket.gethostname()}:{worker.pid}"), 20, "the worker")
            wait_for(lambda: _listening(api_port), 20, "the API")
            r.close()
            yield f"http://127.0.0.1:{api_port}"
        finally:
            stop_process(api)
            stop_process(worker)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def populate(settings: JobqSettings, gate: str) -> dict[str, list[str]]:
    """Three running jobs, two deferred ones, some finished, and one dead letter that ``gate`` will fix."""
    run = uuid.uuid4().hex[:8]
    async with Client(settings) as client:
        done = await client.enqueue_many([JobRequest("add", {"a": i, "b": 1}) for i in range(40)])
        running = [await client.enqueue("tracked", {"run": run, "seconds": 60}) for _ in range(3)]
        deferred = [await client.enqueue("add", {"a": 1, "b": 1}, defer_by=3600) for _ in range(2)]
        dead = await client.enqueue("gated", {"gate": gate})
        for h in done:
            await h.wait(timeout_s=20)
        await dead.wait(timeout_s=20)
        deadline = time.monotonic() + 20
        while True:
            states = [(await h.status()).status.value for h in running]
            if states == ["in_progress"] * 3:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"running jobs never all started: {states}")
            await asyncio.sleep(0.05)
    return {"running": [h.job_id for h in running], "deferred": [h.job_id for h in deferred], "dead": [dead.job_id]}


async def trickle(settings: JobqSettings, seconds: float) -> None:
    """Enqueue small batches at a rate that rises and falls, so the throughput chart has a shape."""
    async with Client(settings) as client:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            count = 5 + round(25 * abs(math.sin(elapsed / 3)))
            await client.enqueue_many([JobRequest("add", {"a": i, "b": 1}) for i in range(count)])
            await asyncio.sleep(0.5)


async def screenshot(api_url: str, path: Path, settings: JobqSettings) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(f"{api_url}/dashboard#token={TOKEN}")
        await page.wait_for_selector("body[data-loaded=yes]")
        await trickle(settings, 16)  # a few refreshes with work flowing, so the chart has a line
        await page.screenshot(path=str(path), full_page=True)
        await browser.close()


def main() -> None:
    """Start everything on an embedded Redis and write docs/dashboard.png."""
    target = ROOT / "docs" / "dashboard.png"
    target.parent.mkdir(exist_ok=True)
    with EmbeddedRedis.start() as server:
        settings = JobqSettings(redis_url=server.url, queue_name="orders", task_modules=["tests.sample_tasks"])
        logs = Path(os.environ.get("TMPDIR", "/tmp"))
        with live_system(settings, logs) as api_url:
            asyncio.run(populate(settings, gate="shot"))
            asyncio.run(screenshot(api_url, target, settings))
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
