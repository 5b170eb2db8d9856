"""TokenBucket: the rate limit shared by a client's threads, with a fake clock (no sleeping)."""
import threading

import pytest

from core.ratelimit import TokenBucket
from tests.fakes import FakeClock


def test_a_full_bucket_lets_a_burst_through_then_spaces_callers_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=2, clock=clock)
    assert [bucket.reserve() for _ in range(5)] == [0.0, 0.0, 0.25, 0.5, 0.75]
    clock.advance(0.75)  # every reservation so far is due now
    assert bucket.reserve() == 0.25


def test_acquire_sleeps_until_its_token_is_due():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    for _ in range(11):
        bucket.acquire()
    assert clock.slept == pytest.approx(1.0)  # 11 tokens at 10/s: the first free, 10 waited


def test_an_idle_bucket_refills_up_to_its_burst_only():
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    for _ in range(3):
        bucket.reserve()
    clock.advance(60)  # a minute idle: 3 tokens, not 120
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


def test_try_acquire_takes_nothing_when_empty_and_says_when_to_come_back():
    clock = FakeClock()
    bucket = TokenBucket(rate=4, clock=clock)  # burst: one second's worth
    assert [bucket.try_acquire() for _ in range(4)] == [0.0] * 4
    assert bucket.try_acquire() == 0.25
    assert bucket.try_acquire() == 0.25  # a refusal took no token
    clock.advance(0.25)
    assert bucket.try_acquire() == 0.0


def test_wait_time_says_when_a_token_will_be_there_and_takes_none():
    clock = FakeClock()
    bucket = TokenBucket(rate=0.5, burst=2, clock=clock)
    assert bucket.wait_time() == 0.0
    bucket.try_acquire()
    bucket.try_acquire()
    assert bucket.wait_time() == bucket.wait_time() == 2.0  # asking took nothing
    clock.advance(2)
    assert bucket.wait_time() == 0.0 and bucket.try_acquire() == 0.0


def test_threads_sharing_a_bucket_each_get_their_own_token():
    clock = FakeClock()  # never advances: every reservation after the burst waits longer
    bucket = TokenBucket(rate=100, burst=10, clock=clock)
    waits, lock = [], threading.Lock()

    def take():
        mine = [bucket.reserve() for _ in range(50)]
        with lock:
            waits.extend(mine)
    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 400 tokens: 10 at once, then one every 10 ms, none handed out twice
    assert sorted(round(w * 100) for w in waits) == [0] * 10 + list(range(1, 391))


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError, match="> 0"):
        TokenBucket(rate=0)
