"""Backoff and timeout resolution are pure functions: properties, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.errors import InvalidPayload, InvalidPolicy, JobTimeout, PermanentError, RetryLater, SettingsError
from worker.policy import (
    RetryPolicy,
    backoff_ceiling_s,
    backoff_delay_s,
    decide,
    import_error_types,
    resolve_timeout_s,
    should_retry,
)
from worker.states import Outcome

policies = st.builds(
    RetryPolicy,
    max_tries=st.integers(1, 50),
    backoff_base_s=st.floats(0, 100),
    backoff_factor=st.floats(1, 10),
    backoff_max_s=st.floats(0, 3600),
    jitter=st.booleans(),
)
draws = st.floats(0, 1, exclude_max=True)


@given(policy=policies, failed_try=st.integers(1, 10_000), draw=draws)
def test_delay_is_within_zero_and_the_cap(policy: RetryPolicy, failed_try: int, draw: float) -> None:
    delay = backoff_delay_s(policy, failed_try, lambda: draw)
    assert 0 <= delay <= policy.backoff_max_s
    assert delay <= backoff_ceiling_s(policy, failed_try)


@given(policy=policies, failed_try=st.integers(1, 200))
def test_ceiling_never_shrinks_from_one_try_to_the_next(policy: RetryPolicy, failed_try: int) -> None:
    assert backoff_ceiling_s(policy, failed_try) <= backoff_ceiling_s(policy, failed_try + 1)


@given(policy=policies, failed_try=st.integers(1, 200), draw=draws)
def test_full_jitter_scales_the_ceiling_by_the_draw(policy: RetryPolicy, failed_try: int, draw: float) -> None:
    ceiling = backoff_ceiling_s(policy, failed_try)
    delay = backoff_delay_s(policy, failed_try, lambda: draw)
    assert delay == (ceiling * draw if policy.jitter else ceiling)


def test_ceiling_grows_geometrically_until_the_cap() -> None:
    policy = RetryPolicy(backoff_base_s=1, backoff_factor=2, backoff_max_s=10)
    assert [backoff_ceiling_s(policy, n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_huge_try_numbers_do_not_overflow() -> None:
    assert backoff_ceiling_s(RetryPolicy(backoff_factor=10, backoff_max_s=5), 10**9) == 5


def test_retry_until_max_tries() -> None:
    policy = RetryPolicy(max_tries=3)
    assert [should_retry(policy, n) for n in (1, 2, 3)] == [True, True, False]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_tries": 0}, {"backoff_base_s": -1}, {"backoff_factor": 0.5}, {"backoff_max_s": -2}],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidPolicy, match=r"RetryPolicy: .* must"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_try_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        backoff_ceiling_s(RetryPolicy(), 0)


def test_timeout_resolution_order() -> None:
    assert resolve_timeout_s(2.0, 5.0, 300.0) == 2.0
    assert resolve_timeout_s(None, 5.0, 300.0) == 5.0
    assert resolve_timeout_s(None, None, 300.0) == 300.0


# --- the retry decision --------------------------------------------------------------------------------


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


@given(policy=policies, failed_try=st.integers(1, 60), draw=draws)
def test_retryable_error_retries_within_the_backoff_until_tries_run_out(
    policy: RetryPolicy, failed_try: int, draw: float
) -> None:
    decision = decide(Flaky("x"), policy, failed_try, lambda: draw)
    assert decision.failure is Outcome.FAILED
    if failed_try < policy.max_tries:
        assert decision.next is Outcome.RETRYING
        assert decision.delay_s == backoff_delay_s(policy, failed_try, lambda: draw)
    else:
        assert decision.next is Outcome.DEAD_LETTERED
        assert decision.delay_s is None


@given(policy=policies, failed_try=st.integers(1, 60))
def test_permanent_errors_never_retry(policy: RetryPolicy, failed_try: int) -> None:
    for exc in (PermanentError("gone"), InvalidPayload("t", [("f", "bad")])):
        assert decide(exc, policy, failed_try).next is Outcome.DEAD_LETTERED


@given(after_s=st.floats(0, 86400), failed_try=st.integers(1, 4))
def test_retry_later_uses_the_asked_delay_and_still_counts(after_s: float, failed_try: int) -> None:
    policy = RetryPolicy(max_tries=5)
    decision = decide(RetryLater(after_s), policy, failed_try)
    assert (decision.next, decision.delay_s) == (Outcome.RETRYING, after_s)
    assert decide(RetryLater(after_s), policy, 5).next is Outcome.DEAD_LETTERED


def test_timeouts_are_classified_and_retried() -> None:
    decision = decide(JobTimeout("t", "j", 1.0), RetryPolicy(max_tries=2, jitter=False), 1)
    assert (decision.failure, decision.next) == (Outcome.TIMED_OUT, Outcome.RETRYING)
    assert decide(JobTimeout("t", "j", 1.0), RetryPolicy(max_tries=2), 2).next is Outcome.DEAD_LETTERED


def test_give_up_list_wins_over_retry_on() -> None:
    policy = RetryPolicy(give_up_on=(Fatal,))
    assert decide(Fatal(), policy, 1).next is Outcome.DEAD_LETTERED
    assert decide(Flaky(), policy, 1).next is Outcome.RETRYING
    assert decide(JobTimeout("t", "j", 1), RetryPolicy(give_up_on=(JobTimeout,)), 1).next is Outcome.DEAD_LETTERED


def test_errors_outside_retry_on_are_permanent() -> None:
    policy = RetryPolicy(retry_on=(ConnectionError, TimeoutError))
    assert decide(ConnectionResetError(), policy, 1).next is Outcome.RETRYING
    assert decide(ValueError(), policy, 1).next is Outcome.DEAD_LETTERED
    assert decide(RetryLater(3), policy, 1).next is Outcome.RETRYING  # an explicit request is always honoured


def test_giving_up_on_extends_without_duplicates() -> None:
    policy = RetryPolicy(give_up_on=(Fatal,))
    assert policy.giving_up_on((Fatal, KeyError)).give_up_on == (Fatal, KeyError)
    assert policy.giving_up_on(()) is policy


def test_retry_later_refuses_negative_or_nan_delays() -> None:
    with pytest.raises(ValueError, match="0 or more seconds"):
        RetryLater(-1)
    with pytest.raises(ValueError, match="0 or more seconds"):
        RetryLater(float("nan"))


def test_error_names_are_imported_and_bad_ones_name_the_setting() -> None:
    assert import_error_types(["KeyError", "tests.sample_tasks.FlakyError"], "JOBQ_GIVE_UP_ON")[0] is KeyError
    with pytest.raises(SettingsError, match=r"JOBQ_GIVE_UP_ON: cannot import exception class 'nope\.Nope'"):
        import_error_types(["nope.Nope"], "JOBQ_GIVE_UP_ON")
    with pytest.raises(SettingsError, match="is not an exception class"):
        import_error_types(["json.dumps"], "JOBQ_GIVE_UP_ON")
