"""The ``jobq`` command line (also ``python -m worker``): the entry point.

Exit codes: 0 success, 1 runtime failure (Redis unreachable, a failed or unknown job, demo outcome
wrong), 2 bad configuration or usage. Errors go to stderr. The commands are the typer app of
:mod:`worker.cli_app`; a plain ``jobq worker`` runs without it (see :mod:`worker.cli_worker`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from .cli_worker import plain_worker_args, run_plain

if TYPE_CHECKING:
    from .cli_app import app as app

#: Set by a shell asking typer for completions; typer answers it, so such a call is never a plain worker.
_COMPLETION_VARIABLE = "_JOBQ_COMPLETE"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``jobq`` console script."""
    args = argv if argv is not None else sys.argv[1:]
    plain = None if _COMPLETION_VARIABLE in os.environ else plain_worker_args(args)
    if plain is not None:
        run_plain(plain)
    from .cli_app import app

    app(args=args, prog_name="jobq")


def __getattr__(name: str) -> Any:
    """``app``, the typer app, imported on first use (``from worker.cli import app`` keeps working)."""
    if name == "app":
        from .cli_app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
