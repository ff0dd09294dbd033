"""A TCP proxy for partition tests: forwards to Redis until paused, then holds connections open and
silent (a half-open network, the kind that hangs clients without socket timeouts)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from worker.process.embedded import free_port


class LoopbackProxy:
    """A TCP proxy ``127.0.0.1:<port>`` -> ``target`` on an event loop of its own thread.

    Subclasses say what a connection does (:meth:`_client`); this runs the listener, tracks the open
    connections in ``connections`` and tears everything down in :meth:`close`.
    """

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.target_port = target_port
        self._loop = asyncio.new_event_loop()
        self.connections: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError(f"{type(self).__name__} did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        # Stopped: close the listener, every open connection and the loop itself.
        server.close()
        for writer in list(self.connections):
            writer.transport.abort()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.run_until_complete(asyncio.sleep(0))  # the transports' closing callbacks
        self._loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the proxy and drop every connection."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class PausableProxy(LoopbackProxy):
    """``127.0.0.1:<port>`` -> ``target``; :meth:`pause` stops all traffic without closing anything."""

    def __init__(self, target_port: int) -> None:
        self._flowing = threading.Event()
        self._flowing.set()
        super().__init__(target_port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.connections.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                while not self._flowing.is_set():
                    await asyncio.sleep(0.05)  # hold the bytes: the peer sees silence, not a reset
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def pause(self) -> None:
        """Stop forwarding; connections stay open."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again."""
        self._flowing.set()

    def close(self) -> None:
        self._flowing.set()
        super().close()
