"""A TCP proxy that loses replies: it lets a command through to Redis (so Redis runs it), then drops the
reply and resets the connection, the way a `CLIENT KILL`, a crash or a flaky network loses one. The
client sees a connection error and sends the command again, on a new connection."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.integration.proxy import LoopbackProxy


class _Pair:
    __slots__ = ("drop",)

    def __init__(self) -> None:
        self.drop = False  # the reply to the command just forwarded is to be lost


class ReplyDroppingProxy(LoopbackProxy):
    """``127.0.0.1:<port>`` -> ``target``; loses the replies to the commands :meth:`drop_replies` picks."""

    def __init__(self, target_port: int) -> None:
        self._lock = threading.Lock()
        self._containing = b""
        self._every = 1
        self._left = 0  # replies still to lose
        self._seen = 0  # matching commands since drop_replies()
        self._dropped = 0
        super().__init__(target_port)

    def drop_replies(self, containing: bytes = b"EVALSHA", *, times: int = 1, every: int = 1) -> None:
        """Lose the reply of every ``every``-th command whose bytes contain ``containing``, ``times`` times."""
        with self._lock:
            self._containing, self._every, self._left, self._seen = containing, every, times, 0

    @property
    def dropped(self) -> int:
        """Replies lost so far."""
        with self._lock:
            return self._dropped

    @property
    def armed(self) -> int:
        """Replies still to be lost."""
        with self._lock:
            return self._left

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # cancelled when the proxy closes
            await self._forward(reader, writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pair = _Pair()
        self.connections.update((writer, up_writer))
        await asyncio.gather(
            self._requests(reader, up_writer, pair), self._replies(up_reader, writer, up_writer, pair),
            return_exceptions=True,
        )  # fmt: skip
        for w in (writer, up_writer):
            self.connections.discard(w)
            with contextlib.suppress(Exception):
                w.close()

    def _picks(self, data: bytes) -> bool:
        with self._lock:
            if self._left <= 0 or self._containing not in data:
                return False
            self._seen += 1
            if self._seen % self._every:
                return False
            self._left -= 1
            return True

    async def _requests(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, pair: _Pair) -> None:
        while data := await reader.read(65536):
            if self._picks(data):
                pair.drop = True  # set before Redis can answer
            up.write(data)
            await up.drain()
        up.close()

    async def _replies(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: asyncio.StreamWriter, pair: _Pair
    ) -> None:
        while data := await up_reader.read(65536):
            if pair.drop:  # Redis has run the command: lose its answer and reset both sides
                with self._lock:
                    self._dropped += 1
                writer.transport.abort()
                up.transport.abort()
                return
            writer.write(data)
            await writer.drain()
        writer.close()
