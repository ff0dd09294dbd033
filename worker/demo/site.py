"""The local web site ``jobq demo`` points its web jobs at: pages to fetch and a webhook receiver."""

from __future__ import annotations

from aiohttp import web

from worker.process.embedded import free_port
from worker.protocol.signing import verify_webhook


class DemoSite:
    """Pages at ``/page/<n>`` and a receiver at ``/hook`` that checks every signature it gets.

    The receiver answers 503 to the first delivery of a ``flaky`` event, so the demo shows a retry.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.authentic = 0
        self.forged = 0
        self._refused_once: set[str] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> DemoSite:
        """Serve on 127.0.0.1 until :meth:`stop`."""
        app = web.Application()
        app.router.add_get("/page/{n}", self._page)
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _page(self, request: web.Request) -> web.Response:
        n = request.match_info["n"]
        return web.Response(text=f"<html><body>demo page {n}</body></html>", content_type="text/html")

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify_webhook(
            self._secret,
            request.headers.get("X-Jobq-Timestamp", ""),
            body,
            request.headers.get("X-Jobq-Signature", ""),
        )
        if not ok:
            self.forged += 1
            return web.Response(status=401, text="bad signature")
        delivery = request.headers.get("X-Jobq-Delivery", "")
        if b'"flaky"' in body and delivery not in self._refused_once:
            self._refused_once.add(delivery)
            return web.Response(status=503, text="busy, try again")
        self.authentic += 1
        return web.Response(status=204)
