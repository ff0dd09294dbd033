"""Importing the task modules: the project folder on ``sys.path``, and names that jobq's own packages hold.

The ``jobq`` commands make the folder they run in (the user's project) importable, appended to ``sys.path``
as arq does, so that ``jobq worker myapp.jobs`` finds ``./myapp/jobs.py`` without ``PYTHONPATH``
(``JOBQ_IMPORT_CWD=false`` or ``--no-cwd`` turns that off). Appended, not prepended: a user's file never
shadows an installed library (or jobq itself) for anyone.

jobq installs two top-level packages, ``worker`` (jobq) and ``tasks`` (its optional built-in tasks). A user's
module of one of those names is handled here, never silently replaced:

- ``worker``: the package jobq itself runs from, so a user's ``worker.py`` cannot be loaded under that name.
  Naming it as a task module stops with an error that names both files and says to rename the user's.
- ``tasks``: jobq loads its built-in tasks only when asked (``tasks.webhooks``...). A user's own ``tasks.py``
  (or ``tasks/`` package) in the project folder is loaded from its file when named ``tasks`` (or, for a
  package, one of its submodules); naming it together with one of jobq's ``tasks.*`` modules stops with an
  error naming both.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

from worker.errors import TaskDefinitionError

__all__ = ["JOBQ_PACKAGES", "import_modules", "own_package_dir", "project_folder", "use_project_folder"]

#: jobq's own top-level packages (``worker/`` and ``tasks/``, installed side by side).
JOBQ_PACKAGES = ("worker", "tasks")

_project: Path | None = None  # the folder the jobq command made importable (None: none)


def own_package_dir(name: str) -> Path:
    """Where jobq's own package ``name`` (one of :data:`JOBQ_PACKAGES`) is installed."""
    return Path(__file__).resolve().parents[2] / name


def use_project_folder(folder: Path | None = None) -> Path:
    """Make ``folder`` (the current directory by default) importable for task modules: append it to sys.path."""
    global _project
    _project = (folder or Path.cwd()).resolve()
    if str(_project) not in sys.path:
        sys.path.append(str(_project))
    return _project


def project_folder() -> Path | None:
    """The folder :func:`use_project_folder` made importable, if any."""
    return _project


def _users_own(top: str) -> Path | None:
    """The project folder's own module or package named ``top``, when it is not jobq's package of that name."""
    if _project is None:
        return None
    for candidate in (_project / f"{top}.py", _project / top):
        if candidate.exists() and candidate.resolve() != own_package_dir(top):
            return candidate
    return None


def _check(names: list[str]) -> Path | None:
    """Refuse names that a user's file and jobq's own package both claim; the user's ``tasks``, if it is asked for."""
    users_worker = _users_own("worker")
    for name in names:
        if name.split(".")[0] == "worker" and users_worker is not None:
            raise TaskDefinitionError(
                f"task module {name!r}: your {users_worker} has the name of jobq's own package "
                f"'worker' ({own_package_dir('worker')}), which is the one loaded; rename yours (for example "
                f"to {_project.name if _project else 'myapp'}_worker.py) and name it instead"
            )
    users_tasks = _users_own("tasks")
    named = [n for n in names if n == "tasks" or n.startswith("tasks.")]
    theirs = [n for n in named if n == "tasks" or _in_users_package(users_tasks, n)] if users_tasks else []
    if users_tasks is None or not theirs:
        return None
    ours = [n for n in named if n not in theirs]
    if ours:
        raise TaskDefinitionError(
            f"task modules 'tasks' and {ours[0]!r}: 'tasks' is your {users_tasks}, and {ours[0]!r} one of jobq's "
            f"built-in task modules ({own_package_dir('tasks')}); both cannot be loaded under one name: rename "
            "yours (for example to jobs.py) and name it instead"
        )
    return users_tasks


def _in_users_package(users: Path, name: str) -> bool:
    rest = name.split(".")[1:]
    return users.is_dir() and (users.joinpath(*rest).with_suffix(".py").exists() or users.joinpath(*rest).is_dir())


def _load_users_tasks(path: Path) -> ModuleType:
    """The user's own ``tasks`` module or package, loaded from its file under the name ``tasks``."""
    package = path.is_dir()
    location = path / "__init__.py" if package else path
    loaded = sys.modules.get("tasks")
    if loaded is not None:
        if Path(getattr(loaded, "__file__", None) or "").resolve() == location.resolve():
            return loaded
        raise TaskDefinitionError(
            f"task module 'tasks': jobq's built-in package {own_package_dir('tasks')} is already loaded in this "
            f"process, so your {path} cannot be; rename yours (for example to jobs.py) and name it instead"
        )
    spec = importlib.util.spec_from_file_location(
        "tasks", location, submodule_search_locations=[str(path)] if package else None
    )
    if spec is None or spec.loader is None:
        raise TaskDefinitionError(f"cannot import task module 'tasks' from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tasks"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["tasks"]
        raise
    return module


def import_modules(names: Iterable[str]) -> list[ModuleType]:
    """Each named module, and every submodule of the packages among them (imported once)."""
    wanted = list(names)
    users_tasks = _check(wanted)
    seen: dict[str, ModuleType] = {}
    for name in wanted:
        for module in _import_tree(name, users_tasks):
            seen.setdefault(module.__name__, module)
    return list(seen.values())


def _import_tree(module_name: str, users_tasks: Path | None) -> Iterator[ModuleType]:
    module = _import(module_name, users_tasks)
    yield module
    search_path = getattr(module, "__path__", None)
    if search_path is None:
        return
    for info in pkgutil.walk_packages(search_path, prefix=module.__name__ + "."):
        yield _import(info.name, users_tasks)


def _import(module_name: str, users_tasks: Path | None) -> ModuleType:
    try:
        if users_tasks is not None and module_name.split(".")[0] == "tasks":
            package = _load_users_tasks(users_tasks)  # first, so that its submodules are found under it
            if module_name == "tasks":
                return package
        return importlib.import_module(module_name)
    except ImportError as exc:
        hint = "" if _project is None else f"; the project folder {_project} is on the import path"
        raise TaskDefinitionError(
            f"cannot import task module {module_name!r} (given on the command line or in JOBQ_TASK_MODULES): "
            f"{exc}{hint}"
        ) from exc
