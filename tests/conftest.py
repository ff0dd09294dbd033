"""Fixtures shared by all tiers: clean JOBQ_* environment and settings factories."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from worker.settings import JobqSettings


@pytest.fixture(autouse=True)
def clean_jobq_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's JOBQ_* variables."""
    for name in list(os.environ):
        if name.startswith("JOBQ_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings() -> Callable[..., JobqSettings]:
    """Settings with test-friendly defaults; keyword arguments override fields."""

    def make(**overrides: Any) -> JobqSettings:
        values: dict[str, Any] = {
            "task_modules": ["tests.sample_tasks"],
            "poll_delay_s": 0.01,
            "retry_backoff_base_s": 0.01,
            "retry_backoff_max_s": 0.05,
            "cancel_grace_s": 0.05,
        }
        values.update(overrides)
        return JobqSettings(**values)

    return make
