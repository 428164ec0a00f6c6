"""The RateLimit-* and Retry-After headers of a key's window stay within the window."""

from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botranks_domain.errors import TooManyRequests
from libs.infra.identity.accounts import RATE_WINDOW_S, RateState
from libs.infra.identity.gate import KeyVerdict, rate_of


@given(st.floats(min_value=-5, max_value=RATE_WINDOW_S + 5, allow_nan=False))
def test_reset_is_whole_seconds_within_the_window(reset_s):
    headers = RateState(60, 3, reset_s).headers()
    assert 0 <= int(headers["RateLimit-Reset"]) <= RATE_WINDOW_S


def test_a_batch_that_waited_for_the_lock_still_says_at_most_one_window():
    # the oldest hit was recorded 0.4 s after this batch read its clock: the raw wait is 60.4 s
    with pytest.raises(TooManyRequests) as refused:
        rate_of(KeyVerdict("limited", 0, RATE_WINDOW_S + 0.4), 60, uuid4())
    assert refused.value.headers["Retry-After"] == str(RATE_WINDOW_S)
    assert refused.value.headers["RateLimit-Reset"] == str(RATE_WINDOW_S)
    assert refused.value.headers["RateLimit-Remaining"] == "0"


def test_retry_after_is_at_least_a_second():
    with pytest.raises(TooManyRequests) as refused:
        rate_of(KeyVerdict("limited", 0, 0.0), 60, uuid4())
    assert refused.value.headers["Retry-After"] == "1"
