"""jobq's stderr handler: try lines read as the record path writes them, in order, each written once."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from worker.observability import logs as observability
from worker.observability.formatters import TEXT_FORMAT, JsonFormatter, TextFormatter
from worker.observability.logs import log_try
from worker.observability.stderr_lines import StderrLines
from worker.states import Outcome


class Stream(io.StringIO):
    """A stream that keeps each ``write`` call apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def install() -> Iterator[Callable[[str], tuple[StderrLines, Stream]]]:
    """Make a StderrLines on a Stream the only root handler, as configure_logging does with stderr."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)

    def make(log_format: str) -> tuple[StderrLines, Stream]:
        stream = Stream()
        formatter = JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT)
        handler = StderrLines(stream, formatter)
        root.handlers[:] = [handler]
        root.setLevel(logging.DEBUG)
        return handler, stream

    yield make
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def log_some(count: int = 1, start: int = 0) -> None:
    for i in range(start, start + count):
        log_try(f"job-{i}", "noop", 1, 3, Outcome.SUCCEEDED, 0.0012)


def lines(stream: Stream) -> list[str]:
    return stream.getvalue().splitlines()


def no_filter(_: logging.LogRecord) -> bool:
    return True


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_direct_line_reads_as_the_record_path_writes_it(
    install: Callable[[str], tuple[StderrLines, Stream]], log_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.123)  # the LogRecord reads the same clock
    calls: list[tuple[Any, ...]] = [
        ("a", "add", 1, 1, Outcome.SUCCEEDED, 0.0123),
        ("b", "flaky", 1, 3, Outcome.RETRYING, 1.5, "FlakyError: boom", Outcome.FAILED),
        ("c", "slow", 3, 3, Outcome.DEAD_LETTERED, 30.0, "timed out", Outcome.TIMED_OUT),
        ("d", "?", 0, 0, Outcome.LEASE_LOST, 0.0, "lost"),
        ("e", "add", 1, 1, Outcome.WAITING, 0.0),
    ]
    written = []
    for direct in (True, False):
        _, stream = install(log_format)
        if not direct:
            observability.job_logger.addFilter(no_filter)  # a filter needs the record: the record path
        try:
            for call in calls:
                log_try(*call)
        finally:
            observability.job_logger.removeFilter(no_filter)
        written.append(lines(stream))
    assert written[0] == written[1]
    assert len(written[0]) == len(calls)


def test_outside_an_event_loop_each_line_is_written_at_once(
    install: Callable[[str], tuple[StderrLines, Stream]],
) -> None:
    _, stream = install("text")
    log_some()
    assert len(lines(stream)) == 1
    log_some()
    assert len(stream.writes) == 2


async def test_the_lines_of_one_iteration_leave_in_one_write_in_order(
    install: Callable[[str], tuple[StderrLines, Stream]],
) -> None:
    _, stream = install("json")
    log_some(3)
    logging.getLogger("jobq.other").warning("between")  # a record from elsewhere joins the same write
    log_some(2, start=3)
    assert stream.writes == []  # not before the end of this iteration
    await asyncio.sleep(0)
    assert len(stream.writes) == 1
    messages = [orjson.loads(line)["message"].split()[:2] for line in lines(stream)]
    assert messages == [
        ["job", "job-0"],
        ["job", "job-1"],
        ["job", "job-2"],
        ["between"],
        ["job", "job-3"],
        ["job", "job-4"],
    ]
    await asyncio.sleep(0)
    log_some(1, start=5)
    await asyncio.sleep(0)
    assert len(stream.writes) == 2
    assert len(lines(stream)) == 7  # the first six are not written again
    assert "".join(stream.writes) == stream.getvalue()


async def test_a_flush_writes_the_buffered_lines_once(install: Callable[[str], tuple[StderrLines, Stream]]) -> None:
    handler, stream = install("text")
    log_some(2)
    handler.flush()  # what logging.shutdown does at exit
    assert [line.rsplit(": ", 1)[1].split()[1] for line in lines(stream)] == ["job-0", "job-1"]
    await asyncio.sleep(0)  # the flush scheduled for the end of the iteration finds nothing left
    await asyncio.sleep(0)
    assert len(lines(stream)) == 2
    assert "".join(stream.writes) == stream.getvalue()


async def test_a_line_from_another_thread_follows_the_buffered_ones(
    install: Callable[[str], tuple[StderrLines, Stream]],
) -> None:
    _, stream = install("text")
    log_some(2)
    await asyncio.to_thread(log_some, 1, 2)  # no running loop there: written at once, after the buffer
    await asyncio.sleep(0)
    assert [line.rsplit(": ", 1)[1].split()[1] for line in lines(stream)] == ["job-0", "job-1", "job-2"]


async def test_logging_shutdown_flushes_what_the_loop_did_not(
    install: Callable[[str], tuple[StderrLines, Stream]],
) -> None:
    handler, stream = install("text")
    log_some(1)
    logging.shutdown([lambda: handler])  # logging keeps weakrefs to its handlers; any callable does
    assert len(lines(stream)) == 1
    await asyncio.sleep(0)
    assert len(lines(stream)) == 1


def test_another_handler_gets_the_record(
    install: Callable[[str], tuple[StderrLines, Stream]], caplog: pytest.LogCaptureFixture
) -> None:
    _, stream = install("text")
    logging.getLogger().addHandler(caplog.handler)  # a handler of the user's, next to jobq's
    log_some()
    assert [r.job_id for r in caplog.records] == ["job-0"]  # type: ignore[attr-defined]
    assert len(lines(stream)) == 1


def test_a_patched_logger_gets_the_record(
    install: Callable[[str], tuple[StderrLines, Stream]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[logging.LogRecord] = []
    original = logging.Logger.callHandlers

    def patched(self: logging.Logger, record: logging.LogRecord) -> None:  # as Sentry's integration does
        seen.append(record)
        original(self, record)

    _, stream = install("text")
    monkeypatch.setattr(logging.Logger, "callHandlers", patched)
    log_some()
    assert [r.name for r in seen] == ["jobq.job"]
    assert len(lines(stream)) == 1


def test_a_disabled_level_costs_no_line(install: Callable[[str], tuple[StderrLines, Stream]]) -> None:
    _, stream = install("text")
    logging.getLogger().setLevel(logging.WARNING)
    log_some()
    assert stream.getvalue() == ""
