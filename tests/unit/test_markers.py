"""The tier markers: ``-m integration`` selects exactly tests/integration/, ``-m deploy`` exactly tests/deploy/,
and ``make test-unit``'s expression neither (tests/conftest.py marks each item from its directory)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPRESSIONS = ["", "integration", "not integration", "deploy", "not integration and not deploy"]
# Pytest's own collection in a child process (so this session's plugins and modules stay out of it),
# once per expression; a few files per tier keep it quick.
COLLECT = textwrap.dedent(
    """
    import json, sys
    import pytest

    class Selected:
        def pytest_collection_finish(self, session):
            self.ids = [item.nodeid for item in session.items]

    out, expressions, paths = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
    selected = {}
    for expression in expressions:
        recorder = Selected()
        code = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", "-m", expression, *paths], [recorder])
        selected[expression] = {"code": int(code), "ids": recorder.ids}
    with open(out, "w") as f:
        json.dump(selected, f)
    """
)
PATHS = [
    "tests/integration/test_worker_process.py",
    "tests/integration/test_fleet.py",
    "tests/deploy/test_compose.py",
    "tests/unit/test_policy.py",
]


@pytest.mark.timeout(240)  # a few collections in a child process, on a loaded machine
def test_each_tier_marker_selects_exactly_its_directory(tmp_path: Path) -> None:
    out = tmp_path / "selected.json"
    subprocess.run(
        [sys.executable, "-c", COLLECT, str(out), json.dumps(EXPRESSIONS), *PATHS], cwd=ROOT, check=True, timeout=200
    )
    selected = {expression: result["ids"] for expression, result in json.loads(out.read_text()).items()}
    everything = selected[""]
    integration = [i for i in everything if i.startswith("tests/integration/")]
    deploy = [i for i in everything if i.startswith("tests/deploy/")]
    unit = [i for i in everything if i.startswith("tests/unit/")]
    assert integration
    assert deploy
    assert unit
    assert selected["integration"] == integration
    assert selected["not integration"] == deploy + unit
    assert selected["deploy"] == deploy
    assert selected["not integration and not deploy"] == unit  # make test-unit


def test_unknown_markers_are_errors() -> None:
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in pytest_options["addopts"]
    assert {m.split(":")[0] for m in pytest_options["markers"]} == {"integration", "deploy"}
