"""The token bucket: request starts at least 1/rate apart, the request's own time not added on top."""

from __future__ import annotations

import threading
from itertools import pairwise

import pytest

from airflow_provider_kwtsms.pacing import TokenBucket


class FakeTime:
    """A clock that only moves when someone sleeps (or a test says time passed)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


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
    assert gaps == pytest.approx([0.5] * 9)


def test_request_time_is_part_of_the_gap_not_added_to_it():
    # A request taking 0.3 s at 2 req/s: the next one waits only the 0.2 s left (the seed
    # client would wait 0.5 s more, making the gap 0.8 s).
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    starts = starts_of(bucket, fake, 5, work=0.3)
    gaps = [b - a for a, b in pairwise(starts)]
    assert gaps == pytest.approx([0.5] * 4)
    assert fake.sleeps == pytest.approx([0.2] * 4)


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
    assert [b - a for a, b in pairwise(starts)] == pytest.approx([0.5, 0.5])


def test_burst_allows_that_many_back_to_back_then_paces():
    fake = FakeTime()
    bucket = TokenBucket(4.0, burst=3, clock=fake.clock, sleep=fake.sleep)
    starts = starts_of(bucket, fake, 6)
    assert starts[:3] == [1000.0] * 3
    assert [b - a for a, b in pairwise(starts[2:])] == pytest.approx([0.25] * 3)
    # Any window of 1 s holds at most rate + burst - 1 starts.
    assert max(sum(1 for s in starts if t <= s < t + 1) for t in starts) <= 4 + 2


def test_pause_holds_the_next_request_back():
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    bucket.acquire()
    bucket.pause(3.0)
    bucket.acquire()
    assert fake.now == pytest.approx(1003.0)
    bucket.acquire()
    assert fake.now == pytest.approx(1003.5)


@pytest.mark.parametrize("rate", [0, -1, None])
def test_rate_must_be_positive(rate):
    with pytest.raises(ValueError, match="rate must be a positive"):
        TokenBucket(rate)  # type: ignore[arg-type]


def test_burst_must_be_at_least_one():
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1.0, burst=0)


def test_threads_share_the_rate():
    # 4 threads x 10 tokens from one bucket at 200 req/s, the clock frozen: the 40 tokens get 40
    # distinct start times one interval apart (a bucket per thread would hand out 4 at each time).
    bucket = TokenBucket(200.0, clock=lambda: 0.0)
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
    assert sorted(waits) == pytest.approx([k / 200.0 for k in range(40)])
