"""The ``jobq`` console script: starts jobq's own CLI even when a user's ``worker.py`` comes first on sys.path.

jobq's package is named ``worker``, the name arq users give their own settings file. With the project folder on
``PYTHONPATH``, ``import worker`` would find the user's file and the command would crash before it starts. This
module has a name of its own (installed at the top level, next to the packages), finds the sys.path entry that
holds jobq's package, loads the package from there first, and leaves sys.path as it was: the user's
``worker.py`` is then reported by name if it is given as a task module (see ``worker.taskdef.modules``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

__all__ = ["main"]


def _jobq_root() -> Path | None:
    """The sys.path entry that holds jobq's own ``worker`` package (site-packages, or the source tree)."""
    for entry in sys.path:
        root = Path(entry or ".").resolve()
        if (root / "worker" / "engine" / "arq_worker.py").is_file():  # a file only jobq's package has
            return root
    return None


def _load_jobq_first() -> None:
    root = _jobq_root()
    if root is None or "worker" in sys.modules:
        return
    spec = importlib.util.find_spec("worker")
    ours = str(root / "worker" / "__init__.py")
    if spec is not None and spec.origin == ours:
        return
    sys.path.insert(0, str(root))
    try:
        importlib.import_module("worker")
    finally:
        sys.path.remove(str(root))


def main() -> None:
    """Entry point of the ``jobq`` console script."""
    _load_jobq_first()
    from worker.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
