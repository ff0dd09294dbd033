"""Backoff and timeout resolution are pure functions: properties, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.policy import (
    RetryPolicy,
    backoff_ceiling_s,
    backoff_delay_s,
    resolve_timeout_s,
    should_retry,
)

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
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_try_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        backoff_ceiling_s(RetryPolicy(), 0)


def test_timeout_resolution_order() -> None:
    assert resolve_timeout_s(2.0, 5.0, 300.0) == 2.0
    assert resolve_timeout_s(None, 5.0, 300.0) == 5.0
    assert resolve_timeout_s(None, None, 300.0) == 300.0
