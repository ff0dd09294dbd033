"""The public surface is worker.__all__; tasks use nothing else."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import worker

ROOT = Path(__file__).resolve().parents[2]


def test_all_lists_exactly_the_public_names() -> None:
    # Names are imported on first access (PEP 562): resolve them all, then nothing else may be public.
    for name in worker.__all__:
        getattr(worker, name)
    public = {name for name in vars(worker) if not name.startswith("_")}
    submodules = {name for name, value in vars(worker).items() if inspect.ismodule(value)}
    assert set(worker.__all__) == public - submodules


def test_dir_lists_the_public_names_before_they_are_imported() -> None:
    assert set(worker.__all__) <= set(dir(worker))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        worker.NoSuchThing  # noqa: B018


def test_every_public_name_has_a_docstring() -> None:
    undocumented = [name for name in worker.__all__ if not inspect.getdoc(getattr(worker, name))]
    assert undocumented == []


def test_tasks_import_only_the_public_api() -> None:
    offenders = []
    for path in sorted((ROOT / "tasks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("worker."):
                offenders.append(f"{path.name}: from {node.module} import ...")
            if isinstance(node, ast.Import):
                offenders += [f"{path.name}: import {a.name}" for a in node.names if a.name.startswith("worker.")]
    assert offenders == []


def test_worker_never_imports_tasks() -> None:
    offenders = []
    for path in sorted((ROOT / "worker").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tasks":
                offenders.append(path.name)
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "tasks" for a in node.names):
                offenders.append(path.name)
    assert offenders == []


def test_only_the_edges_read_the_environment() -> None:
    readers = sorted(
        p.relative_to(ROOT / "worker").as_posix()
        for p in (ROOT / "worker").rglob("*.py")
        if "os.environ" in p.read_text() or "getenv(" in p.read_text()
    )
    # settings.py builds the settings object; the demo and the supervisor hand it to the workers they start.
    assert readers == ["demo/run.py", "process/supervisor.py", "settings.py"]
