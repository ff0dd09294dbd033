"""Repeated stop signals: the first drains, the second stops now and arms a watchdog, the third exits."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest

from worker.process.forced_exit import ForcedExit


class Timers:
    def __init__(self) -> None:
        self.armed: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.armed.append((delay_s, fn))


def test_second_signal_arms_the_watchdog_and_the_third_exits_at_once(caplog: pytest.LogCaptureFixture) -> None:
    exits: list[int] = []
    timers = Timers()
    forced = ForcedExit(11.0, exit_process=exits.append, start_timer=timers)
    forced.again(signal.SIGTERM)
    assert forced.armed
    assert [d for d, _ in timers.armed] == [11.0]
    assert exits == []
    forced.again(signal.SIGINT)
    assert exits == [128 + signal.SIGINT]
    assert "SIGINT a third time: exiting now (exit 130)" in caplog.text


def test_the_watchdog_exits_when_the_stop_outlives_its_last_chance(caplog: pytest.LogCaptureFixture) -> None:
    exited = threading.Event()
    codes: list[int] = []

    def exit_process(code: int) -> None:
        codes.append(code)
        exited.set()

    ForcedExit(0.05, exit_process=exit_process).again(signal.SIGTERM)  # a real daemon timer thread
    assert exited.wait(10)
    assert codes == [128 + signal.SIGTERM]
    assert "still stopping 0s after SIGTERM again: exiting now (exit 143)" in caplog.text


async def test_the_worker_escalates_on_the_second_and_third_signal(make_harness: Any) -> None:
    h = make_harness()
    exits: list[int] = []
    timers = Timers()
    h.worker.forced_exit = ForcedExit(h.worker.forced_exit.last_chance_s, exit_process=exits.append, start_timer=timers)
    h.worker.handle_sig(signal.SIGTERM)  # drains: nothing armed
    assert (timers.armed, exits) == ([], [])
    h.worker.handle_sig(signal.SIGTERM)
    assert len(timers.armed) == 1
    assert exits == []
    assert timers.armed[0][0] == h.settings.cancel_grace_s + 10.0
    h.worker.handle_sig(signal.SIGTERM)
    assert exits == [143]
