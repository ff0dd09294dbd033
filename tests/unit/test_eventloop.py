"""The worker's event loop: uvloop when installed, asyncio's loop otherwise."""

from __future__ import annotations

import asyncio
import builtins
import gc
import signal
import time
from typing import Any

import pytest

from worker.process import eventloop


async def _loop_class() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_runs_on_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert eventloop.run(_loop_class()).startswith("uvloop")


def test_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert eventloop.loop_factory() is None
    assert eventloop.run(_loop_class()).startswith("asyncio")


async def _abandons_a_stubborn_task() -> str:
    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    asyncio.get_running_loop().create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    return "done"


def test_a_task_that_ignores_cancellation_does_not_keep_the_loop_alive(caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    assert eventloop.run(_abandons_a_stubborn_task(), leftover_wait_s=0.05) == "done"
    assert time.monotonic() - started < 5  # asyncio.run would wait for ever
    assert "1 tasks ignored their cancellation for 0.1s (stubborn)" in caplog.text
    gc.collect()  # the abandoned task goes with its loop


async def _handles_sigterm() -> None:
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: None)


@pytest.mark.parametrize("uvloop", [True, False])
def test_the_loops_signal_handlers_do_not_outlive_it(uvloop: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if uvloop:
        pytest.importorskip("uvloop")
    else:
        monkeypatch.setattr(eventloop, "loop_factory", lambda: None)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    eventloop.run(_handles_sigterm())
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
