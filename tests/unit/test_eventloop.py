"""The worker's event loop: uvloop when installed, asyncio's loop otherwise."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest

from worker import eventloop


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
