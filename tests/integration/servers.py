"""Extra redis-server processes for connection and restart tests: TLS, ACL users, Sentinel, and an append-only
server restartable on the same port and files."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from worker.process.embedded import free_port
from worker.process.processes import stop_process


class ServerProcess:
    """A redis-server (or sentinel) started with ``args``; ready once ``probe`` stops raising."""

    def __init__(self, args: list[str], workdir: Path, probe: Callable[[int], object], port: int) -> None:
        self.port = port
        binary = shutil.which("redis-server")
        assert binary is not None
        log = workdir / f"redis-{port}.log"
        self.proc = subprocess.Popen([binary, *args, "--logfile", str(log)], cwd=workdir, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe(port)
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"server on port {port} did not start:\n{log.read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=5)


def start_server(
    args: list[str], workdir: Path, probe: Callable[[int], object], *, config_file: Path | None = None
) -> ServerProcess:
    """Start a server on a free port (``{port}`` in ``args`` is replaced); a config file goes first."""
    port = free_port()
    base = ["--bind", "127.0.0.1", "--dir", str(workdir)]
    if config_file is None:
        base += ["--save", "", "--appendonly", "no"]
    head = [str(config_file)] if config_file else []
    return ServerProcess([*head, *base, *[a.replace("{port}", str(port)) for a in args]], workdir, probe, port)


def _ping(port: int) -> None:
    r = redis.Redis(port=port)
    try:
        r.ping()
    finally:
        r.close()


def start_aof_server(workdir: Path, port: int) -> ServerProcess:
    """A redis-server on ``port`` with appendonly on (fsync always) keeping its files in ``workdir``: started again
    with the same two, it comes back with every write it acknowledged."""
    args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "always"]
    return ServerProcess(args, workdir, _ping, port)
