"""Logs and Sentry: payloads stay out, final failures are reported once, retried tries are not."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from tests.unit.harness import Harness
from worker.observability.formatters import JsonFormatter
from worker.observability.logs import configure_logging
from worker.observability.sentry import init_sentry
from worker.settings import JobqSettings


class CapturingTransport(Transport):
    """Keeps what sentry-sdk would send instead of sending it."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type == "event" and item.payload.json is not None:
                self.events.append(item.payload.json)


@pytest.fixture
def init_capturing_sentry(make_settings: Any) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """Initialise Sentry exactly as the worker does, with a transport that keeps the events."""

    def init(**settings: Any) -> list[dict[str, Any]]:
        assert init_sentry(make_settings(sentry_dsn="https://key@sentry.invalid/1", **settings))
        transport = CapturingTransport()
        sentry_sdk.get_client().transport = transport
        return transport.events

    yield init
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)  # back to no client: Sentry off for later tests


@pytest.fixture
def sentry_events(init_capturing_sentry: Callable[..., list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return init_capturing_sentry()


async def test_final_failure_is_reported_once_with_job_tags(
    harness: Harness, sentry_events: list[dict[str, Any]]
) -> None:
    handle = await harness.client.enqueue("flaky", {"failures": 9})
    await harness.run_due()
    assert sentry_events == []  # try 1 of 3 will be retried: not an error
    for _ in range(2):
        harness.clock.advance(10)
        await harness.run_due()
    assert not (await handle.wait(timeout_s=1)).success
    assert len(sentry_events) == 1
    event = sentry_events[0]
    assert event["tags"]["jobq.task"] == "flaky"
    assert event["tags"]["jobq.job_id"] == handle.job_id
    assert event["tags"]["jobq.try"] == 3
    assert event["exception"]["values"][-1]["type"] == "FlakyError"


async def test_payload_never_reaches_sentry(harness: Harness, sentry_events: list[dict[str, Any]]) -> None:
    # The payload sits in the frames' local variables; init_sentry keeps locals out of events.
    await harness.client.enqueue("slow", {"seconds": 31337.5})
    await harness.run_due()
    assert len(sentry_events) == 1
    text = orjson.dumps(sentry_events).decode()
    assert "31337" not in text


async def test_payload_is_sent_when_the_setting_allows_it(
    harness: Harness, init_capturing_sentry: Callable[..., list[dict[str, Any]]]
) -> None:
    events = init_capturing_sentry(sentry_send_job_args=True)
    await harness.client.enqueue("slow", {"seconds": 31337.5})
    await harness.run_due()
    assert events[0]["contexts"]["jobq job"]["payload"] == [{"seconds": 31337.5}]


async def test_invalid_payload_is_reported(harness: Harness, sentry_events: list[dict[str, Any]]) -> None:
    await harness.redis.enqueue_job("add", {"a": "x", "b": 1})
    await harness.run_due()
    assert [e["exception"]["values"][-1]["type"] for e in sentry_events] == ["InvalidPayload"]


def record(msg: str, args: tuple[Any, ...]) -> logging.LogRecord:
    return logging.LogRecord("arq.worker", logging.INFO, __file__, 1, msg, args, None)


async def test_one_log_line_per_try_without_the_payload(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="jobq.job"):
        handle = await harness.client.enqueue("flaky", {"failures": 1})
        await harness.run_due()
        harness.clock.advance(10)
        await harness.run_due()
    lines = [r for r in caplog.records if r.name == "jobq.job"]
    assert [r.outcome for r in lines] == ["retrying", "succeeded"]  # type: ignore[attr-defined]
    first = lines[0]
    assert (first.job_id, first.task, first.try_number) == (handle.job_id, "flaky", 1)  # type: ignore[attr-defined]
    assert first.failure == "failed"  # type: ignore[attr-defined]
    assert "failures" not in caplog.text  # the payload field name never shows up


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    rec = record("job %s done", ("x",))
    rec.job_id = "x"
    line = orjson.loads(JsonFormatter().format(rec))
    assert line["level"] == "INFO"
    assert line["logger"] == "arq.worker"
    assert line["message"] == "job x done"
    assert line["job_id"] == "x"


def test_configure_logging_installs_one_handler(make_settings: Any) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        settings: JobqSettings = make_settings(log_format="json", log_level="WARNING")
        configure_logging(settings)
        configure_logging(settings)
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.WARNING
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_text_formatter_writes_the_time_as_logging_does() -> None:
    import logging as stdlib_logging

    from worker.observability.formatters import TextFormatter

    ours = TextFormatter("%(asctime)s %(message)s")
    theirs = stdlib_logging.Formatter("%(asctime)s %(message)s")
    for created in (1_800_000_000.123, 1_800_000_000.999, 1_800_000_001.0, 1_800_000_061.5):
        record = stdlib_logging.LogRecord("x", stdlib_logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == theirs.format(record)
