"""An embedded Redis for the demo and the test suite: a ``redis-server`` child process on a free
loopback port when the binary is on PATH, otherwise fakeredis's TCP server in a thread.

It keeps nothing on disk and is stopped by the process that started it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal, Self

import redis

from worker.process.processes import stop_process

EmbeddedKind = Literal["auto", "redis-server", "fakeredis"]
START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded redis at {url} did not answer within {timeout_s:g}s") from None
                time.sleep(0.02)
    finally:
        client.close()


class EmbeddedRedis:
    """A throw-away Redis on 127.0.0.1: ``with EmbeddedRedis.start() as server: server.url``."""

    def __init__(self, kind: Literal["redis-server", "fakeredis"], port: int) -> None:
        self.kind = kind
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._fake_server: object | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, kind: EmbeddedKind = "auto", *, extra_args: tuple[str, ...] = ()) -> EmbeddedRedis:
        """Start a server of ``kind`` ("auto" prefers redis-server) and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if kind == "redis-server" and binary is None:
            raise RuntimeError("redis-server is not on PATH; install it (Debian: apt-get install redis-server)")
        if kind == "fakeredis" or binary is None:
            server = cls("fakeredis", free_port())
            server._start_fakeredis()
        else:
            server = cls("redis-server", free_port())
            server._start_redis_server(binary, extra_args)
        return server

    def _start_redis_server(self, binary: str, extra_args: tuple[str, ...]) -> None:
        self._tmpdir = tempfile.TemporaryDirectory(prefix="jobq-redis-")
        args = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--maxmemory-policy", "noeviction",
            "--dir", self._tmpdir.name,
            "--logfile", str(Path(self._tmpdir.name) / "redis.log"),
            *extra_args,
        ]  # fmt: skip
        # Fixed argv; the binary is the redis-server found on PATH.
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # noqa: S603
        try:
            _wait_until_up(self.url, START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def _start_fakeredis(self) -> None:
        from fakeredis import TcpFakeServer

        server = TcpFakeServer(("127.0.0.1", self.port), server_type="redis")
        server.daemon_threads = True
        self._fake_server = server
        self._thread = threading.Thread(target=server.serve_forever, name="jobq-fakeredis", daemon=True)
        self._thread.start()
        _wait_until_up(self.url, START_TIMEOUT_S)

    @property
    def pid(self) -> int | None:
        """The redis-server process id (None for fakeredis, which runs in this process)."""
        return self._process.pid if self._process else None

    def stop(self) -> None:
        """Stop the server and remove its files; safe to call twice."""
        if self._process is not None:
            stop_process(self._process, timeout_s=5)
            self._process = None
        if self._fake_server is not None:
            server = self._fake_server
            self._fake_server = None
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
        if self._tmpdir is not None:
            with contextlib.suppress(OSError):
                self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
