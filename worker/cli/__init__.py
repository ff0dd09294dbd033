"""The ``jobq`` command line (also ``python -m worker``): the entry point of the typer app in :mod:`worker.cli.app`.

Exit codes: 0 success, 1 runtime failure (Redis unreachable, a failed or unknown job, demo outcome
wrong), 2 bad configuration or usage. Errors go to stderr.
"""

from __future__ import annotations

import sys

from worker.cli.app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``jobq`` console script."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="jobq")
