"""The optional HTTP server of one worker process, on ``JOBQ_HTTP_PORT``.

* ``/livez``: 200 while the main loop keeps going round (a blocked event loop or a stuck worker
  fails it; restart the process).
* ``/readyz``: 200 while the worker is connected to Redis and not draining; 503 otherwise.
* ``/metrics``: the Prometheus metrics of this worker (see :mod:`worker.observability.metrics`).

aiohttp is imported when the server starts: a worker without ``JOBQ_HTTP_PORT`` never loads it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from worker.engine.health import WorkerState
from worker.observability.metrics import CONTENT_TYPE_LATEST, Metrics

if TYPE_CHECKING:
    from aiohttp import web

#: The main loop counts as stuck when it has not gone round for this long.
STUCK_AFTER_S = 30.0


def probe_app(
    state: WorkerState,
    *,
    redis_stale_after_s: float,
    metrics: Metrics | None = None,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> web.Application:
    """The probe endpoints over ``state``, and ``/metrics`` (refreshing the queue gauges first)."""
    from aiohttp import web

    async def livez(_: web.Request) -> web.Response:
        stalled_s = time.monotonic() - state.last_loop
        ok = stalled_s < STUCK_AFTER_S
        return web.json_response({"live": ok, "loop_stalled_s": round(stalled_s, 3)}, status=200 if ok else 503)

    async def readyz(_: web.Request) -> web.Response:
        fresh = time.monotonic() - state.last_redis_ok < redis_stale_after_s
        ok = state.connected and fresh and not state.draining
        body = {
            "ready": ok,
            "worker_id": state.worker_id,
            "connected": state.connected and fresh,
            "draining": state.draining,
            "running": state.running,
            "last_error": state.last_error or None,
        }
        return web.json_response(body, status=200 if ok else 503)

    async def metrics_page(_: web.Request) -> web.Response:
        if metrics is None:
            raise web.HTTPNotFound()
        if refresh is not None:
            try:
                await refresh()
            except Exception as exc:  # stale gauges beat no metrics at all while Redis is away
                state.last_error = f"{type(exc).__name__}: {exc}"
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app


async def start_probes(
    state: WorkerState,
    port: int,
    *,
    redis_stale_after_s: float,
    metrics: Metrics | None = None,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> web.AppRunner:
    """Serve the endpoints on ``0.0.0.0:port``; stop them with ``await runner.cleanup()``."""
    from aiohttp import web

    app = probe_app(state, redis_stale_after_s=redis_stale_after_s, metrics=metrics, refresh=refresh)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port).start()  # noqa: S104 - probes come from the kubelet
    return runner
