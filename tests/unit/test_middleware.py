"""Job middleware: befores in order, afters reversed, failing hooks isolated, every end of a try seen once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.harness import Harness
from worker import JobStatus, Middleware, Outcome, SettingsError, TryInfo
from worker.engine.arq_worker import JobqWorker
from worker.engine.assembly import build_worker
from worker.errors import JobAborted, JobTimeout, PermanentError

Event = tuple[str, str, str]


class Recording(Middleware):
    """Writes what each hook saw into ``events`` (shared by the instances of one test)."""

    events: list[Any] = []  # noqa: RUF012  # replaced per test by the fixture

    def __init__(self, label: str = "setting") -> None:
        self.label = label

    def before_try(self, info: TryInfo) -> None:
        self.events.append((self.label, "before", info.job_id))

    def after_try(self, info: TryInfo, outcome: Outcome, error: BaseException | None, duration_s: float) -> None:
        self.events.append((self.label, "after", info.job_id, outcome, info.failure, error, duration_s, info.task))


class Broken(Middleware):
    def before_try(self, info: TryInfo) -> None:
        raise RuntimeError("before broke")

    def after_try(self, info: TryInfo, outcome: Outcome, error: BaseException | None, duration_s: float) -> None:
        raise RuntimeError("after broke")


class Advancing(Middleware):
    """Moves the injected clock on while the try runs: the duration after_try sees."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        self.advance = advance

    def before_try(self, info: TryInfo) -> None:
        self.advance(2.5)


#: An instance, for JOBQ_MIDDLEWARE by dotted name.
SHARED = Recording("instance")


@pytest.fixture(autouse=True)
def events() -> list[Any]:
    Recording.events = []
    return Recording.events


def worker_with(h: Harness, *middleware: Middleware) -> JobqWorker:
    return build_worker(
        h.settings, h.registry, h.redis, handle_signals=False, clock=h.clock, draw=lambda: 1.0, middleware=middleware
    )


async def run_all(worker: JobqWorker) -> None:
    try:
        await worker.run_due_jobs()
    finally:
        if worker.executor.services is not None:
            await worker.executor.services.resources.close()


async def test_befores_run_in_order_and_afters_in_reverse(harness: Harness, events: list[Any]) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 2}, job_id="j")
    await run_all(worker_with(harness, Recording("a"), Recording("b")))
    assert [e[:2] for e in events] == [("a", "before"), ("b", "before"), ("b", "after"), ("a", "after")]


async def test_a_failing_hook_is_logged_once_and_isolated(
    harness: Harness, events: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 2}, job_id="j")
    with caplog.at_level(logging.ERROR, logger="jobq.middleware"):
        await run_all(worker_with(harness, Recording("a"), Broken(), Recording("b")))
    assert [e[:2] for e in events] == [("a", "before"), ("b", "before"), ("b", "after"), ("a", "after")]
    assert events[-1][3] is Outcome.SUCCEEDED  # the job succeeded all the same
    assert (await harness.client.job("j").status()).status is JobStatus.SUCCEEDED
    failures = [r for r in caplog.records if r.name == "jobq.middleware"]
    assert [r.getMessage() for r in failures] == [
        "middleware Broken failed in before_try of job j (add); the job goes on",
        "middleware Broken failed in after_try of job j (add); the job goes on",
    ]
    assert all(r.exc_info is not None for r in failures)


async def test_after_try_sees_the_duration(harness: Harness, events: list[Any]) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 2}, job_id="j")
    await run_all(worker_with(harness, Recording("r"), Advancing(harness.clock.advance)))
    after = events[-1]
    assert after[3] is Outcome.SUCCEEDED
    assert after[6] == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("task", "payload", "outcome", "failure", "error"),
    [
        ("add", {"a": 1, "b": 2}, Outcome.SUCCEEDED, None, None),
        ("flaky", {"failures": 1}, Outcome.RETRYING, Outcome.FAILED, "FlakyError"),
        ("slow", {"seconds": 5}, Outcome.DEAD_LETTERED, Outcome.TIMED_OUT, JobTimeout),
        ("permanent", {"note": "x"}, Outcome.DEAD_LETTERED, Outcome.FAILED, PermanentError),
    ],
)
async def test_after_try_sees_how_the_try_ended(
    harness: Harness, events: list[Any], task: str, payload: Any, outcome: Outcome, failure: Any, error: Any
) -> None:
    await harness.client.enqueue(task, payload, job_id="j")
    await run_all(worker_with(harness, Recording("r")))
    assert [e[:2] for e in events] == [("r", "before"), ("r", "after")]
    _, _, job_id, seen, seen_failure, seen_error, duration_s, seen_task = events[1]
    assert (job_id, seen_task, seen, seen_failure) == ("j", task, outcome, failure)
    if error is None:
        assert seen_error is None
    elif isinstance(error, str):
        assert type(seen_error).__name__ == error
    else:
        assert isinstance(seen_error, error)
    assert duration_s >= 0


async def test_an_abort_found_at_the_start_is_seen_by_after_try_only(harness: Harness, events: list[Any]) -> None:
    await harness.client.enqueue("add", {"a": 1, "b": 1}, job_id="early")
    await harness.redis.set("jobq:abort:early", "1")
    await run_all(worker_with(harness, Recording("r")))
    assert len(events) == 1
    assert events[0][1:4] == ("after", "early", Outcome.ABORTED)
    assert isinstance(events[0][5], JobAborted)


async def test_a_job_waiting_for_a_slot_is_not_a_try_no_hook_sees_it(harness: Harness, events: list[Any]) -> None:
    await harness.client.enqueue("limited", {"seconds": 0.1}, job_id="first")
    await harness.client.enqueue("limited", {"seconds": 0.0}, job_id="second")
    worker = worker_with(harness, Recording("r"))
    await run_all(worker)  # "second" waits for the slot, and the slot "first" gives back puts it back
    await run_all(worker)
    assert [e[1:3] for e in events] == [
        ("before", "first"),
        ("after", "first"),
        ("before", "second"),
        ("after", "second"),
    ]


async def test_middleware_from_the_setting_class_and_instance(
    make_harness: Callable[..., Harness], events: list[Any]
) -> None:
    h = make_harness(middleware="tests.unit.test_middleware.Recording,tests.unit.test_middleware.SHARED")
    await h.client.enqueue("add", {"a": 1, "b": 2}, job_id="j")
    await h.run_due()
    assert [e[:2] for e in events] == [
        ("setting", "before"),
        ("instance", "before"),
        ("instance", "after"),
        ("setting", "after"),
    ]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("tests.unit.no_such_module.Thing", "cannot import 'tests.unit.no_such_module.Thing'"),
        ("tests.unit.test_middleware.Nothing", "has no attribute 'Nothing'"),
        ("tests.unit.test_middleware.Event", "is not a worker.Middleware"),
        ("Recording", "is not a dotted name"),
    ],
)
async def test_a_bad_middleware_setting_is_named(make_harness: Callable[..., Harness], name: str, says: str) -> None:
    with pytest.raises(SettingsError, match="JOBQ_MIDDLEWARE") as raised:
        make_harness(middleware=name)
    assert says in str(raised.value)


async def test_async_hooks_are_refused(harness: Harness) -> None:
    class Async(Middleware):
        async def after_try(  # type: ignore[override]
            self, info: TryInfo, outcome: Outcome, error: BaseException | None, duration_s: float
        ) -> None:
            pass

    with pytest.raises(SettingsError, match="after_try must be a plain function"):
        worker_with(harness, Async())


async def test_builtin_middlewares_are_in_one_chain(harness: Harness) -> None:
    names = [mw.name for mw in harness.worker.executor.middleware.middleware]
    assert names == ["SentryMiddleware", "MetricsMiddleware", "TryLogMiddleware"]
