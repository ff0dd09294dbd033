"""Serving the HTTP API with bounds a hostile client cannot stretch: how long a request's headers and body
may take to arrive, how long an idle connection stays open, and how many connections are served at once."""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType

from aiohttp import web

_BUSY_BODY = b'{"error":"the API is serving as many connections as JOBQ_API_MAX_CONNECTIONS allows","fields":[]}'
#: The answer to a connection beyond the limit, written before it is closed.
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class _Busy(asyncio.Protocol):
    """A connection over the limit: answered 503 and closed at once, never parsed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(BUSY)
        transport.close()


class ApiServer:
    """``app`` listening on ``host:port`` until closed (``port=0`` picks a free port; see :attr:`port`).

    Headers that do not arrive within ``read_timeout_s`` of the connection (or of the previous
    answer, on a kept-alive connection) close it; the API's handlers give the body as long again
    (JOBQ_API_READ_TIMEOUT_S of the app's client; 408 after that). Past ``max_connections`` open
    connections, new ones are answered 503.
    """

    def __init__(
        self, app: web.Application, host: str, port: int, *, read_timeout_s: float, max_connections: int
    ) -> None:
        self.host = host
        self.port = port
        self.max_connections = max_connections
        # aiohttp closes a connection whose request has not fully arrived when the keep-alive timer fires.
        self._runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=read_timeout_s, lingering_time=min(read_timeout_s, 10.0)
        )
        self._listener: asyncio.Server | None = None

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None, "started before setup"
        if len(server.connections) >= self.max_connections:
            return _Busy()
        return server()

    async def start(self) -> None:
        """Set the app up and listen."""
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._protocol, self.host, self.port, reuse_address=True)
        sockets = self._listener.sockets
        if sockets and sockets[0].family in (socket.AF_INET, socket.AF_INET6):
            self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, let the requests being answered finish, and run the app's cleanup."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        await self._runner.cleanup()  # closes the open connections, which wait_closed waits for
        if listener is not None:
            await listener.wait_closed()

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
