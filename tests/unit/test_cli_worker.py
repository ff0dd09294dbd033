"""``jobq worker`` without typer: which arguments take that path, and that it exits as typer does."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from worker.cli import main
from worker.cli_app import app
from worker.cli_worker import MAX_PROCESSES, WorkerArgs, plain_worker_args


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["worker"], WorkerArgs()),
        (["worker", "--burst"], WorkerArgs(burst=True)),
        (["worker", "--no-burst"], WorkerArgs(burst=False)),
        (["worker", "--processes", "4"], WorkerArgs(processes=4)),
        (["worker", "--processes=4", "--burst"], WorkerArgs(burst=True, processes=4)),
        (["worker", "--processes", str(MAX_PROCESSES)], WorkerArgs(processes=MAX_PROCESSES)),
    ],
)
def test_plain_invocations_skip_typer(args: list[str], expected: WorkerArgs) -> None:
    assert plain_worker_args(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["stats"],
        ["worker", "--help"],
        ["worker", "--burst", "--help"],
        ["worker", "--bogus"],
        ["worker", "extra"],
        ["worker", "--burst", "--burst"],
        ["worker", "--burst", "--no-burst"],
        ["worker", "--processes"],
        ["worker", "--processes", "0"],
        ["worker", "--processes", str(MAX_PROCESSES + 1)],
        ["worker", "--processes", "04"],
        ["worker", "--processes", "+4"],
        ["worker", "--processes", "٤"],
        ["worker", "--processes=abc"],
        ["worker", "--processes", "2", "--processes", "3"],
        ["worker", "--"],
        ["--help", "worker"],
    ],
)
def test_everything_else_is_parsed_by_typer(args: list[str]) -> None:
    assert plain_worker_args(args) is None


def test_a_usage_error_exits_as_under_typer(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["worker", "--burst", "--processes", "2"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    under_typer = CliRunner().invoke(app, argv)
    assert exited.value.code == under_typer.exit_code == 2
    assert capsys.readouterr().err == under_typer.stderr
    assert "error: --burst and --processes do not mix" in under_typer.stderr


def test_bad_settings_exit_2_as_under_typer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBQ_MAX_JOBS", "many")
    with pytest.raises(SystemExit) as exited:
        main(["worker", "--burst"])
    under_typer = CliRunner().invoke(app, ["worker", "--burst"])
    assert exited.value.code == under_typer.exit_code == 2
    assert capsys.readouterr().err == under_typer.stderr
    assert "JOBQ_MAX_JOBS" in under_typer.stderr
