"""One owner per try: the reason a try was cancelled travels with it, and each end is counted once, by kind."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.unit.harness import Harness
from worker import JobStatus, Outcome
from worker.engine.try_handle import CancelReason, cancelled_outcome
from worker.states import (
    FAILED_OUTCOMES,
    RETRIED_OUTCOMES,
    TERMINAL_OUTCOMES,
    UNCHARGED_OUTCOMES,
    TryTally,
    tally_of,
)

WAIT_S = 5.0


async def _running(h: Harness, job_id: str, seconds: float = 30) -> None:
    handle = await h.client.enqueue("progressing", {"seconds": seconds}, job_id=job_id)
    await h.worker.run_cycle()
    for _ in range(1000):  # the task reports progress once it runs
        if (await handle.status()).progress is not None:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"job {job_id} never started")


def _counts(h: Harness) -> tuple[int, int, int, int]:
    state = h.worker.state
    return state.succeeded, state.failed, state.retried, state.uncharged


async def _ended(h: Harness) -> None:
    await asyncio.wait_for(asyncio.gather(*h.worker.tasks.values(), return_exceptions=True), WAIT_S)
    await h.worker.executor.flush()


def test_every_end_of_a_try_has_exactly_one_tally() -> None:
    ends = set(Outcome) - {Outcome.FAILED, Outcome.TIMED_OUT}  # what happened to a failure, not an end
    assert {o for o in ends if tally_of(o) is not None} == ends
    assert (FAILED_OUTCOMES | RETRIED_OUTCOMES | UNCHARGED_OUTCOMES | {Outcome.SUCCEEDED}) == ends
    assert not FAILED_OUTCOMES & RETRIED_OUTCOMES
    assert not RETRIED_OUTCOMES & UNCHARGED_OUTCOMES
    assert FAILED_OUTCOMES <= TERMINAL_OUTCOMES
    assert {tally_of(o) for o in UNCHARGED_OUTCOMES} == {TryTally.UNCHARGED}
    assert tally_of(Outcome.RETRYING) is TryTally.RETRIED
    assert tally_of(Outcome.FAILED) is None


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        (CancelReason.ABORT, Outcome.ABORTED),
        (CancelReason.LEASE_LOST, Outcome.LEASE_LOST),
        (CancelReason.SHUTDOWN, Outcome.INTERRUPTED),
        (None, Outcome.INTERRUPTED),  # a bare task.cancel(): what arq's own shutdown does
    ],
)
def test_a_cancelled_try_ends_by_its_reason(reason: CancelReason | None, outcome: Outcome) -> None:
    assert cancelled_outcome(reason) is outcome


async def test_an_aborted_try_ends_aborted_and_counts_as_failed(harness: Harness) -> None:
    await _running(harness, "ab")
    await harness.client.abort("ab")
    assert await harness.worker.check_aborts() == ["ab"]
    await _ended(harness)
    assert (await harness.client.job("ab").wait(1)).outcome is Outcome.ABORTED
    assert _counts(harness) == (0, 1, 0, 0)
    assert (harness.worker.jobs_failed, harness.worker.jobs_retried) == (1, 0)  # arq's counters read the same


async def test_a_try_whose_lease_is_lost_records_nothing_and_is_not_a_retry(harness: Harness) -> None:
    await _running(harness, "lost")
    await harness.redis.set("arq:in-progress:lost", "thief:1")
    await harness.worker.renew_leases()
    await _ended(harness)
    assert await harness.redis.get("arq:in-progress:lost") == b"thief:1"  # the thief's lease stands
    assert await harness.redis.exists("arq:result:lost") == 0
    assert _counts(harness) == (0, 0, 0, 1)
    assert harness.worker.jobs_retried == 0


async def test_a_try_stopped_by_a_shutdown_goes_back_uncharged_and_is_not_a_retry(make_harness: object) -> None:
    h: Harness = make_harness(shutdown_grace_s=0.01)  # type: ignore[operator]
    await _running(h, "cut")
    h.worker.handle_sig(signal.SIGTERM)  # drains; the grace period runs out at once
    await _ended(h)
    info = await h.client.job("cut").status()
    assert (info.status, info.interruptions) == (JobStatus.QUEUED, 1)
    assert _counts(h) == (0, 0, 0, 1)


async def test_an_abort_then_a_shutdown_still_ends_aborted(harness: Harness) -> None:
    await _running(harness, "both")
    await harness.client.abort("both")
    assert await harness.worker.check_aborts() == ["both"]
    harness.worker.tries.cancel_all(CancelReason.SHUTDOWN)  # the first reason is the one kept
    await _ended(harness)
    assert (await harness.client.job("both").wait(1)).outcome is Outcome.ABORTED


async def test_a_deferred_try_is_not_counted_as_retried(harness: Harness) -> None:
    first = await harness.client.enqueue("limited", {"seconds": 0.05}, job_id="first")
    second = await harness.client.enqueue("limited", {"seconds": 0.0}, job_id="second")
    assert await harness.run_due() == 1  # "limited" runs one at a time here: the claim parks the second
    assert _counts(harness) == (1, 0, 0, 0)  # no try of the second started, none counted
    assert harness.worker.jobs_retried == 0
    assert (await first.wait(1)).success
    assert (await second.status()).status is JobStatus.WAITING


async def test_a_failed_try_that_runs_again_is_counted_as_retried(harness: Harness) -> None:
    await harness.client.enqueue("flaky", {"failures": 1}, job_id="again")
    await harness.run_due()
    assert _counts(harness) == (0, 0, 1, 0)
    assert harness.worker.jobs_retried == 1
