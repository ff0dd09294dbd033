"""Fixtures shared by all tiers: clean JOBQ_* environment and settings factories; each test's tier marker."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from worker.settings import JobqSettings

TESTS = Path(__file__).resolve().parent
#: The marker of each tier that needs more than the package: ``pytest -m "not integration and not deploy"``
#: is the unit tier (``make test-unit``). A ``pytestmark`` in a conftest marks nothing, so items are marked here.
TIER_MARKERS = {"integration": TESTS / "integration", "deploy": TESTS / "deploy"}


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by ``-m``
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ ``integration`` and every one under tests/deploy/ ``deploy``."""
    for item in items:
        for marker, directory in TIER_MARKERS.items():
            if item.path.is_relative_to(directory):
                item.add_marker(marker)


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
