"""Renamed names and arguments: the old spelling keeps working for one release, with a warning.

Each use of an old spelling raises a :class:`DeprecationWarning` that names the new one; giving a
keyword argument under both spellings is an :class:`~worker.errors.ConflictingArguments` error.
Remove an entry here (and its callers' old parameters) in the release after it was added.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, TypeVar

from worker.errors import ConflictingArguments

T = TypeVar("T")

#: The release that drops the old spellings.
REMOVED_IN = "jobq 0.3"


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` was renamed ``new`` (``stacklevel`` 3: the caller of the function that calls this)."""
    warnings.warn(f"{old} is deprecated, use {new}; {old} goes away in {REMOVED_IN}", DeprecationWarning, stacklevel)


def renamed_argument(
    call: str, old: str, old_value: T | None, new: str, new_value: T | None, *, stacklevel: int = 4
) -> T | None:
    """The value of a renamed keyword argument of ``call``: the new one, else the old one with a warning.

    ``stacklevel`` 4 blames the caller of the function that calls this one.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise ConflictingArguments(f"{call}() got both {new}= and its deprecated spelling {old}=; give only {new}=")
    warn_renamed(f"{call}({old}=...)", f"{call}({new}=...)", stacklevel=stacklevel)
    return old_value


def module_alias(module: str, aliases: Mapping[str, str], name: str, namespace: Mapping[str, Any]) -> Any:
    """A module ``__getattr__`` body: the value of the new name for an old one in ``aliases``, with a warning."""
    new = aliases.get(name)
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warn_renamed(f"{module}.{name}", f"{module}.{new}", stacklevel=4)
    return namespace[new]
