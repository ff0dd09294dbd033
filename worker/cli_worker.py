"""``jobq worker``: the command's body, and the plain invocations of it that need no typer.

A worker process lives for days and its memory is the fleet's cost, so ``jobq worker``,
``jobq worker --burst`` and ``jobq worker --processes N`` (see :func:`plain_worker_args`) run without
loading typer and the other commands. Anything else (``--help``, a bad option or value, another
command) goes to typer, which parses and reports exactly as for every other command.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn, TextIO, cast

from .cli_common import cli_settings, fail, run

#: ``--processes`` accepts 1 to this many.
MAX_PROCESSES = 256


@dataclass(frozen=True)
class WorkerArgs:
    """The options of ``jobq worker``."""

    burst: bool = False
    processes: int = 1


def plain_worker_args(args: Sequence[str]) -> WorkerArgs | None:
    """The options when ``args`` is ``worker`` with only well-formed options, each at most once.

    Those are ``--burst``, ``--no-burst``, ``--processes N`` and ``--processes=N`` with ``N`` a plain
    number in range. ``None`` for anything else: typer parses it (and reports what is wrong).
    """
    if not args or args[0] != "worker":
        return None
    burst: bool | None = None
    processes: int | None = None
    rest = list(args[1:])
    while rest:
        arg = rest.pop(0)
        if arg in {"--burst", "--no-burst"} and burst is None:
            burst = arg == "--burst"
        elif arg.startswith("--processes=") and processes is None:
            processes = _processes(arg.removeprefix("--processes="))
        elif arg == "--processes" and processes is None and rest:
            processes = _processes(rest.pop(0))
        else:
            return None
        if processes == 0:
            return None
    return WorkerArgs(burst=bool(burst), processes=processes or 1)


def _processes(text: str) -> int:
    """``text`` as a process count, or 0 unless it is a plain number in 1..MAX_PROCESSES."""
    if not text.isascii() or not text.isdigit() or text.startswith("0") or len(text) > 3:
        return 0
    value = int(text)
    return value if value <= MAX_PROCESSES else 0


def worker_command(burst: bool, processes: int) -> None:
    """Run the worker (or ``processes`` of them under a supervisor); raises ``typer.Exit`` with the exit code."""
    from .observability import configure_logging, init_sentry

    settings = cli_settings()
    configure_logging(settings)
    if processes > 1:
        import typer

        from .supervisor import Supervisor

        if burst:
            fail("--burst and --processes do not mix: run one burst worker per process", 2)
        raise typer.Exit(Supervisor(processes, base_port=settings.http_port).run())
    from . import eventloop
    from .runner import run_worker

    init_sentry(settings)  # before the worker exists
    run(lambda: eventloop.run(run_worker(settings, burst=burst)))  # on uvloop when installed


def run_plain(args: WorkerArgs) -> NoReturn:
    """Run :func:`worker_command` and exit as typer's ``main`` would have.

    That is: the code of a ``typer.Exit``, 130 on Ctrl-C, "Aborted" and 1 at the end of input, 1 on a
    closed pipe; any other exception propagates (a traceback and exit code 1, as with
    ``pretty_exceptions_enable=False``). typer is imported only by the paths that raise or need it.
    """
    try:
        try:
            worker_command(args.burst, args.processes)
        except KeyboardInterrupt:
            sys.exit(130)
        except EOFError:
            from typer import rich_utils

            print(file=sys.stderr)
            rich_utils.rich_abort_error()
            sys.exit(1)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            from typer._click.utils import PacifyFlushWrapper

            sys.stdout = cast(TextIO, PacifyFlushWrapper(sys.stdout))
            sys.stderr = cast(TextIO, PacifyFlushWrapper(sys.stderr))
            sys.exit(1)
    except Exception as exc:
        import typer

        if isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        raise
    sys.exit(0)
