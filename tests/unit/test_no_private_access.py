"""No test reaches into a private attribute of jobq's own objects (issue 13): tests use public seams.

A heuristic over the syntax of every module under tests/. It flags

- an attribute access ``x._name`` (one leading underscore, not a dunder), unless that module defines ``_name``
  itself (a method, class attribute or ``self._name`` of a helper class of its own, or a function);
- a string ``"_name"`` handed to ``getattr``/``setattr``/``hasattr``/``delattr``, ``monkeypatch.setattr`` or
  ``mock.patch.object``, and a dotted target such as ``"worker.x._name"``;
- ``from worker... import _name`` (and ``tasks``), and an import of a private jobq module.

Third-party private names that a test cannot avoid are allowed by name, each with the reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
JOBQ_PACKAGES = ("worker", "tasks")
#: Private names of other people's objects that tests need, and why.
ALLOWED = {
    "_exit": "os._exit: how a forked child ends without running its parent's clean-up (test_sync_fork)",
    "_protected_args": "click.Context keeps a group's sub-command name there from click 8.2 (test_runbook)",
}
#: Calls whose second argument names an attribute of their first one.
NAMING_CALLS = {"getattr", "setattr", "hasattr", "delattr", "object"}  # ``object``: mock.patch.object


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name != "_"


def own_names(tree: ast.Module) -> set[str]:
    """The private names a module defines itself: functions, classes, class attributes, ``self._x``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else []
                if isinstance(statement, ast.AnnAssign):
                    targets = [statement.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.args.args:
            me = node.args.args[0].arg
            for sub in ast.walk(node):
                if not (isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store)):
                    continue
                if isinstance(sub.value, ast.Name) and sub.value.id == me:
                    names.add(sub.attr)
    return {n for n in names if is_private(n)}


def is_jobq(dotted: str) -> bool:
    return any(dotted == package or dotted.startswith(f"{package}.") for package in JOBQ_PACKAGES)


def call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def named_by_call(call: ast.Call) -> Iterator[str]:
    """``getattr(x, "_y")``-style names, and the parts of a dotted jobq target such as ``"worker.x._y"``."""
    strings = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in call.args]
    if call_name(call) in NAMING_CALLS and len(strings) >= 2 and strings[1] is not None:
        yield strings[1]
    for text in strings:
        if text is not None and is_jobq(text) and " " not in text:
            yield from text.split(".")


def reached_names(node: ast.AST) -> Iterator[str]:
    """The names through which ``node`` reaches into something: attributes, named attributes, jobq imports."""
    if isinstance(node, ast.Attribute):
        yield node.attr
    elif isinstance(node, ast.Call):
        yield from named_by_call(node)
    elif isinstance(node, ast.ImportFrom) and is_jobq(node.module or ""):
        yield from (node.module or "").split(".")
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.Import):
        for alias in node.names:
            if is_jobq(alias.name):
                yield from alias.name.split(".")


def private_reaches(path: Path) -> set[tuple[int, str]]:
    """Each reach into a private name in the module at ``path``: its line and its code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = own_names(tree)
    return {
        (node.lineno, ast.unparse(node))
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt | ast.expr)
        for name in reached_names(node)
        if is_private(name) and name not in own and name not in ALLOWED
    }


def test_no_test_reaches_into_a_private_attribute_of_jobq() -> None:
    found = [
        f"{path.relative_to(TESTS.parent)}:{line}: {code}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, code in sorted(private_reaches(path))
    ]
    assert not found, "tests reach into private attributes; add a public seam in worker/ instead:\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_reach(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from worker.engine import _hidden\n"
        "import worker._private\n"
        "class Own:\n"
        "    def __init__(self):\n"
        "        self._mine = 1\n"
        "    def _helper(self):\n"
        "        return self._mine\n"
        "def test(h, monkeypatch):\n"
        "    h.client._codec\n"
        "    getattr(h.worker, '_recorder')\n"
        "    monkeypatch.setattr(Leases, '_write', None)\n"
        "    monkeypatch.setattr('worker.engine.leases._clock', None)\n"
        "    Own()._helper(), Own()._mine, h.__class__, os._exit\n"
    )
    assert [code for _, code in sorted(private_reaches(probe))] == [
        "from worker.engine import _hidden",
        "import worker._private",
        "h.client._codec",
        "getattr(h.worker, '_recorder')",
        "monkeypatch.setattr(Leases, '_write', None)",
        "monkeypatch.setattr('worker.engine.leases._clock', None)",
    ]
