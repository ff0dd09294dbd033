"""`jobq api`'s server against slow clients: headers or a body sent a byte at a time, and more connections than
it serves. Each slow connection is dropped after JOBQ_API_READ_TIMEOUT_S; connections past
JOBQ_API_MAX_CONNECTIONS are answered 503 at once. Waits are bounded and generous; none assumes speed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from worker.client.producer import Client
from worker.http.api import create_app
from worker.http.server import ApiServer
from worker.observability.metrics import Metrics
from worker.settings import JobqSettings

Streams = list[asyncio.StreamWriter]
READ_TIMEOUT_S = 0.5
MAX_CONNECTIONS = 4
#: How long a test waits for the server to act (it should take READ_TIMEOUT_S; a loaded machine is slower).
PATIENCE_S = 20.0


@pytest.fixture
async def server(settings: JobqSettings) -> AsyncIterator[ApiServer]:
    limits = settings.model_copy(update={"api_read_timeout_s": READ_TIMEOUT_S, "api_max_connections": MAX_CONNECTIONS})
    async with Client(limits) as client:
        app = create_app(client, Metrics(), token=None)
        async with ApiServer(
            app, "127.0.0.1", 0, read_timeout_s=limits.api_read_timeout_s, max_connections=limits.api_max_connections
        ) as running:
            yield running


@pytest.fixture
async def streams() -> AsyncIterator[list[asyncio.StreamWriter]]:
    """The test's connections, closed at its end."""
    opened: list[asyncio.StreamWriter] = []
    yield opened
    for writer in opened:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def connect(
    server: ApiServer, streams: list[asyncio.StreamWriter]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    streams.append(writer)
    return reader, writer


async def drip_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bytes:
    """Send ``data`` a byte at a time, 0.1 s apart, until the server closes; return what it answered."""
    deadline = time.monotonic() + PATIENCE_S
    for byte in data:
        if reader.at_eof() or time.monotonic() > deadline:
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            break
        with contextlib.suppress(TimeoutError):
            answer = await asyncio.wait_for(reader.read(65536), timeout=0.1)
            if answer or reader.at_eof():
                return answer + await asyncio.wait_for(reader.read(), timeout=PATIENCE_S)
    return await asyncio.wait_for(reader.read(), timeout=PATIENCE_S)


async def test_headers_sent_a_byte_at_a_time_are_cut_off(
    server: ApiServer, streams: list[asyncio.StreamWriter]
) -> None:
    reader, writer = await connect(server, streams)
    started = time.monotonic()
    headers = b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 2000 + b"\r\n\r\n"
    await drip_until_closed(reader, writer, headers)  # 200 s of dripping if nothing cut it off
    assert reader.at_eof()
    assert time.monotonic() - started < PATIENCE_S


async def test_a_body_sent_a_byte_at_a_time_gets_408_and_is_closed(
    server: ApiServer, streams: list[asyncio.StreamWriter]
) -> None:
    reader, writer = await connect(server, streams)
    writer.write(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n")
    await writer.drain()
    answer = await drip_until_closed(reader, writer, b'{"task":"' + b"a" * 1990)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"did not arrive within 0.5s" in answer
    assert reader.at_eof()


async def test_connections_past_the_limit_get_503_and_the_server_recovers(
    server: ApiServer, streams: list[asyncio.StreamWriter]
) -> None:
    idle = [await connect(server, streams) for _ in range(MAX_CONNECTIONS)]
    reader, writer = await connect(server, streams)
    answer = await asyncio.wait_for(reader.read(), timeout=PATIENCE_S)
    assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
    assert b"JOBQ_API_MAX_CONNECTIONS" in answer
    for idle_reader, _ in idle:  # idle connections are dropped after the read timeout
        assert await asyncio.wait_for(idle_reader.read(), timeout=PATIENCE_S) == b""
    deadline = time.monotonic() + PATIENCE_S
    while True:  # the server counts a connection as gone once its handler has finished
        reader, writer = await connect(server, streams)
        writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), timeout=PATIENCE_S)
        if answer.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
