"""Every ``jobq`` command the runbook shows exists in the CLI and accepts those arguments.

Commands are read from the fenced code blocks and inline code of deploy/README.md, including ones run
through ``kubectl exec ... --`` or ``docker compose ... exec SERVICE``; each is parsed by the real click
command tree (unknown commands or options, bad values and missing arguments fail), never executed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

from worker.cli import app

try:  # typer 0.2x ships its own copy of click
    from typer._click import ClickException
except ImportError:  # older typer uses click itself
    from click import ClickException  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "deploy" / "README.md"
#: The runbook, and every other document that shows operators jobq commands.
DOCS = [RUNBOOK, ROOT / "deploy" / "k8s" / "README.md", ROOT / "README.md"]
FENCE = re.compile(r"```([a-z]*)\n(.*?)```", re.DOTALL)
SHELL_BLOCKS = {"", "sh", "bash", "shell", "console"}
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def jobq_argv(line: str) -> list[str] | None:
    """The arguments after ``jobq`` in one shell line, or None when the line runs no jobq command."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    tokens = shlex.split(line, comments=True)
    for i, token in enumerate(tokens):
        if token != "jobq":
            continue
        before = tokens[:i]
        at_start = not before
        after_separator = bool(before) and before[-1] == "--"  # kubectl exec POD -- jobq ...
        compose_exec = len(before) >= 2 and before[-2] in {"exec", "run"} and "compose" in before  # exec SERVICE jobq
        if (at_start or after_separator or compose_exec) and tokens[i + 1 :]:
            return tokens[i + 1 :]
    return None


def runbook_commands(text: str) -> list[list[str]]:
    """Every jobq command in ``text``'s code blocks and inline code spans."""
    found = []
    for language, block in FENCE.findall(text):
        if language not in SHELL_BLOCKS:
            continue  # Python, YAML, PromQL...
        lines = block.replace("\\\n", " ").splitlines()  # continued lines are one command
        found += [argv for line in lines if (argv := jobq_argv(line)) is not None]
    prose = FENCE.sub("", text)
    found += [argv for span in INLINE.findall(prose) if (argv := jobq_argv(span)) is not None]
    return found


def parse(argv: list[str]) -> None:
    """Parse ``argv`` with the jobq command tree, descending through groups; raises click's errors."""
    asks_help = "--help" in argv  # `jobq CMD --help`: the command must exist; its arguments are not given
    argv = [a for a in argv if a != "--help"]
    command: Any = get_command(app)
    if argv[:1] in (["--install-completion"], ["--show-completion"]):
        # typer's own options: parsing runs them (installing writes the user's shell profile), so only look them up
        assert any(argv[0] in p.opts for p in command.params), f"jobq has no option {argv[0]}"
        return
    try:
        ctx = command.make_context("jobq", list(argv), resilient_parsing=asks_help)
    except typer.Exit as done:  # an eager option (--version, --show-completion) answered during parsing
        if done.exit_code != 0:
            raise
        return
    while hasattr(command, "resolve_command"):  # a group: descend to the named sub-command
        # click keeps the sub-command's name apart from its arguments (``protected_args`` before click 8.2).
        rest = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        if not rest:
            raise ClickException(f"`jobq {' '.join(argv)}` names a command group, not a command")
        _, sub, sub_args = command.resolve_command(ctx, rest)
        if sub is None:  # resolve_command returns None under resilient parsing
            raise ClickException(f"`jobq {' '.join(argv)}`: no such command {rest[0]!r}")
        command = sub
        ctx = command.make_context(command.name or "", sub_args, parent=ctx, resilient_parsing=asks_help)


COMMANDS = [argv for doc in DOCS for argv in runbook_commands(doc.read_text())]


def test_the_runbook_shows_the_operations_it_promises() -> None:
    shown = {" ".join(argv[:2]) for argv in runbook_commands(RUNBOOK.read_text())}
    for expected in (
        "worker",
        "check --worker-id",
        "stats --watch",
        "dlq list",
        "dlq replay",
        "dlq purge",
        "job abort",
    ):
        assert any(s.startswith(expected) for s in shown), f"runbook shows no `jobq {expected}`"


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_runbook_command_exists_with_those_arguments(argv: list[str]) -> None:
    parse(argv)


@pytest.mark.parametrize(
    "bad",
    [
        ["dlq", "list", "--no-such-option"],
        ["dlq", "remove", "JOB_ID"],
        ["worker", "--processes", "many"],
        ["job", "status"],  # the job id is missing
        ["dlq"],  # a group, not a command
        ["dlq", "remove", "--help"],
    ],
)
def test_the_checker_rejects_commands_the_cli_does_not_have(bad: list[str]) -> None:
    with pytest.raises(ClickException):
        parse(bad)


def test_commands_are_found_behind_kubectl_and_compose_but_not_in_other_words() -> None:
    text = (
        "```sh\nkubectl -n jobq exec deploy/jobq-worker -- jobq stats --json\n"
        "docker compose -f deploy/compose.yaml exec worker jobq check\n"
        "kubectl create namespace jobq\n```\nand inline `jobq dlq show JOB_ID`."
    )
    assert runbook_commands(text) == [["stats", "--json"], ["check"], ["dlq", "show", "JOB_ID"]]
