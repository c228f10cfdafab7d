"""The token bucket: request starts at least interval(rate) apart, the request's own time not added on
top; no burst, and no rate above the gateway's 5 a second."""

from __future__ import annotations

import random
import threading
from itertools import pairwise

import pytest
from sandbox_helpers import FakeTime

from airflow_provider_kwtsms.constants import (
    FIREWALL_SLACK,
    LATE_START,
    MAX_RATE,
    MAX_RATE_REASON,
    RATE_GUARD,
)
from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.rate.bucket import TokenBucket, interval

HALF = interval(2.0)  # 0.5 s and the jitter guard


def starts_of(bucket: TokenBucket, fake: FakeTime, count: int, work: float = 0.0) -> list[float]:
    starts = []
    for _ in range(count):
        bucket.acquire()
        starts.append(fake.now)
        fake.now += work  # the request itself takes this long
    return starts


def test_first_request_does_not_wait():
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    assert bucket.acquire() == 0.0
    assert fake.sleeps == []


def test_starts_are_exactly_one_interval_apart_when_requests_are_instant():
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    starts = starts_of(bucket, fake, 10)
    gaps = [b - a for a, b in pairwise(starts)]
    assert gaps == pytest.approx([HALF] * 9)


def test_request_time_is_part_of_the_gap_not_added_to_it():
    # A request taking 0.3 s at 2 req/s: the next one waits only the ~0.2 s left (the seed
    # client would wait 0.5 s more, making the gap 0.8 s).
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    starts = starts_of(bucket, fake, 5, work=0.3)
    gaps = [b - a for a, b in pairwise(starts)]
    assert gaps == pytest.approx([HALF] * 4)
    assert fake.sleeps == pytest.approx([HALF - 0.3] * 4)


def test_slow_requests_never_wait():
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    starts_of(bucket, fake, 5, work=0.7)
    assert fake.sleeps == []


def test_idle_time_does_not_bank_a_burst():
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    bucket.acquire()
    fake.now += 60  # a minute idle
    starts = starts_of(bucket, fake, 3)
    assert [b - a for a, b in pairwise(starts)] == pytest.approx([HALF, HALF])


def most_in_one_second(starts: list[float]) -> int:
    return max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts)


def test_no_burst_setting_exists():
    # The old burst=3 let three requests start at once: a second could hold rate + 2 starts.
    with pytest.raises(TypeError):
        TokenBucket(MAX_RATE, burst=3, clock=FakeTime().clock)  # type: ignore[call-arg]


@pytest.mark.parametrize("seed", range(20))
def test_at_the_cap_no_second_ever_holds_more_than_five_starts(seed):
    # Requests of random length and idle gaps of random length, at the highest rate allowed.
    rng = random.Random(seed)
    fake = FakeTime()
    bucket = TokenBucket(MAX_RATE, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(200):
        bucket.acquire()
        starts.append(fake.now)
        fake.now += rng.choice([0.0, 0.0, rng.uniform(0, 0.3), rng.uniform(0, 3)])
    assert most_in_one_second(starts) <= 5
    assert min(b - a for a, b in pairwise(starts)) >= 1 / MAX_RATE


def test_the_guard_spaces_starts_a_little_more_than_one_over_rate():
    # The jitter guards: at rate 5, five starts take 1.1 s, so a request that reaches the gateway
    # up to 100 ms later than the five after it still leaves 5 in the firewall's second. Below the
    # firewall's pace only the 2 % guard counts: rate 2 keeps 98 % of its cap.
    assert interval(5) == pytest.approx(0.22)
    assert 5 * interval(MAX_RATE) - 1 == pytest.approx(FIREWALL_SLACK) == pytest.approx(0.1)
    assert interval(4.6) == pytest.approx(1.02 / 4.6)  # the firewall's slack is no longer the larger
    assert interval(2) == pytest.approx(0.51)
    assert 0.01 <= RATE_GUARD < 0.03
    assert 1 / (1 + RATE_GUARD) >= 0.97


def test_pause_holds_the_next_request_back():
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    bucket.acquire()
    bucket.pause(3.0)
    bucket.acquire()
    assert fake.now == pytest.approx(1003.0)
    bucket.acquire()
    assert fake.now == pytest.approx(1003.0 + HALF)


@pytest.mark.parametrize("rate", [0, -1, None, float("nan"), 0.05, "fast"])
def test_rate_must_be_a_number_from_a_tenth_to_five(rate):
    with pytest.raises(KwtSMSInputError, match=r"write a number from 0\.1 to 5"):
        TokenBucket(rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [5.01, 6, 10, 1000, float("inf")])
def test_rate_above_five_is_refused_with_the_gateways_reason(rate):
    with pytest.raises(KwtSMSInputError) as caught:
        TokenBucket(rate)
    assert MAX_RATE_REASON in str(caught.value)
    assert MAX_RATE_REASON == (
        "the gateway's firewall blocks the IP above 5 requests a second (kwtSMS API v4.1)"
    )


def test_threads_share_the_rate():
    # 4 threads x 10 tokens from one bucket at 5 req/s, the clock frozen: the 40 tokens get 40
    # distinct start times one interval apart (a bucket per thread would hand out 4 at each time).
    bucket = TokenBucket(5.0, clock=lambda: 0.0)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([k * interval(5.0) for k in range(40)])


def test_a_token_missed_is_given_up_and_a_new_one_taken():
    # The process ran again only 0.1 s after its token's time (a busy CPU): the request must not
    # start late into the next token's interval; a token taken within LATE_START starts.
    fake = FakeTime(100.0)
    bucket = TokenBucket(5, clock=fake, sleep=fake.sleep)
    bucket.acquire()
    fake.now += 0.1
    assert bucket.started() is False
    bucket.acquire()
    first_start = fake.now
    assert bucket.started() is True
    bucket.acquire()
    fake.now += LATE_START / 2
    assert bucket.started() is True
    assert fake.now - first_start >= interval(5)
