"""A small Dockerfile reader: stages, their instructions, and the final stage's command as an argv.

It understands what deploy/Dockerfile uses (comments, parser directives, ``\\`` continuations, stages) and
refuses the shell form of ENTRYPOINT/CMD, whose argv depends on ``/bin/sh -c``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Instruction", "Stage", "entrypoint_argv", "exec_form", "stages"]


@dataclass(frozen=True)
class Instruction:
    """One instruction: upper-case keyword, its arguments as written (continuations joined), line number."""

    keyword: str
    value: str
    line: int


@dataclass
class Stage:
    """A build stage: the ``FROM`` arguments and the instructions after it."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def last(self, keyword: str) -> Instruction | None:
        """The last ``keyword`` instruction of the stage (the one Docker keeps), or None."""
        found = [i for i in self.instructions if i.keyword == keyword]
        return found[-1] if found else None

    def all(self, keyword: str) -> list[Instruction]:
        """Every ``keyword`` instruction of the stage, in order."""
        return [i for i in self.instructions if i.keyword == keyword]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comments (and directives) may sit inside a continued instruction; Docker drops them
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        lines.append((start, " ".join(part for part in pending if part)))
        pending = []
    if pending:
        raise ValueError(f"line {start}: instruction ends with a line continuation")
    return lines


def stages(path: str | Path) -> list[Stage]:
    """The build stages of the Dockerfile at ``path``, in order."""
    result: list[Stage] = []
    for line, logical in _logical_lines(Path(path).read_text(encoding="utf-8")):
        keyword, _, value = logical.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            words = [w for w in value.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name))
        elif result:
            result[-1].instructions.append(Instruction(keyword, value, line))
        elif keyword != "ARG":
            raise ValueError(f"line {line}: {keyword} before the first FROM")
    if not result:
        raise ValueError(f"{path}: no FROM instruction")
    return result


def exec_form(instruction: Instruction) -> list[str]:
    """The argv of an exec-form (JSON array) instruction; ValueError for the shell form."""
    try:
        argv = json.loads(instruction.value)
    except json.JSONDecodeError:
        argv = None
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(
            f"line {instruction.line}: {instruction.keyword} {instruction.value!r} is not in exec form "
            '(a JSON array of strings, e.g. ["jobq", "worker"]): the shell form runs under /bin/sh, '
            "which does not pass SIGTERM on"
        )
    return [str(a) for a in argv]


def entrypoint_argv(path: str | Path) -> list[str]:
    """ENTRYPOINT followed by CMD of the Dockerfile's final stage, as the argv the container runs."""
    final = stages(path)[-1]
    argv: list[str] = []
    for keyword in ("ENTRYPOINT", "CMD"):
        instruction = final.last(keyword)
        if instruction is not None:
            argv += exec_form(instruction)
    if not argv:
        raise ValueError(f"{path}: the final stage has neither ENTRYPOINT nor CMD")
    return argv
