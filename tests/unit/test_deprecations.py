"""Renamed names keep working for one release: each use of an old one warns and names the new one."""

from __future__ import annotations

import importlib

import pytest

import worker
from worker.errors import ConflictingArguments
from worker.states import TERMINAL_STATUSES
from worker.taskdef.registry import TaskRegistry


@pytest.mark.parametrize(
    ("module", "old", "new", "value"),
    [
        ("worker.states", "TERMINAL", "TERMINAL_STATUSES", TERMINAL_STATUSES),
        ("worker.taskdef.registry", "Registry", "TaskRegistry", TaskRegistry),
        ("worker", "TERMINAL", "TERMINAL_STATUSES", TERMINAL_STATUSES),
        ("worker", "Registry", "TaskRegistry", TaskRegistry),
    ],
)
def test_an_old_module_name_warns_and_is_the_new_one(module: str, old: str, new: str, value: object) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{module}\.{old} is deprecated, use {module}\.{new}"):
        assert getattr(importlib.import_module(module), old) is value


def test_every_use_of_an_old_name_warns_not_only_the_first() -> None:
    for _ in range(2):
        with pytest.warns(DeprecationWarning, match="worker.Registry"):
            worker.Registry  # type: ignore[attr-defined]  # noqa: B018  (the old name is not exported)


def test_the_warning_points_at_the_line_that_uses_the_old_name() -> None:
    with pytest.warns(DeprecationWarning, match="TERMINAL") as caught:
        from worker.states import TERMINAL  # noqa: F401
    assert caught[0].filename == __file__


def test_old_names_are_not_public_names() -> None:
    assert {"TERMINAL", "Registry"}.isdisjoint(worker.__all__)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        importlib.import_module("worker.states").Nope  # noqa: B018


def test_a_conflict_is_a_jobq_error_and_a_type_error() -> None:
    assert issubclass(ConflictingArguments, worker.JobqError)
    assert issubclass(ConflictingArguments, TypeError)
