"""The shared limiter's stores against real servers: Redis (the Celery broker) and Postgres.

Same rule as the in-process GCRA (tests/test_shared_rate.py), checked with an explicit clock
(``now=``) and under concurrency: reservations made at the same moment from many threads get
distinct start times, one interval apart, because each step is atomic in the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import Postgres, Redis

from airflow_provider_kwtsms.rate.bucket import interval
from airflow_provider_kwtsms.rate.shared import PostgresRateStore, RateStore, RedisRateStore, SharedBucket


@pytest.fixture(scope="module")
def redis_server(deploy_root: Path) -> Iterator[Redis]:
    server = Redis(deploy_root / "store-redis", deploy_root / "logs")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(params=["redis", "postgres"])
def make_store(
    request: pytest.FixtureRequest, redis_server: Redis, postgres: Postgres
) -> Iterator[Callable[[], RateStore]]:
    """Opens stores on one server: each its own connection, as each process of a deployment."""
    if request.param == "redis":
        url = redis_server.url.replace("/0", "/2")
        redis_server_client = RedisRateStore(url)
        redis_server_client._redis.flushdb()
        redis_server_client.close()
    else:
        url = postgres.create_database("kwtsms_rate_store_test")
    opened: list = []

    def make() -> RateStore:
        made = RedisRateStore(url) if request.param == "redis" else PostgresRateStore(url)
        opened.append(made)
        return made

    yield make
    for made in opened:
        made.close()


@pytest.fixture
def store(make_store: Callable[[], RateStore]) -> RateStore:
    return make_store()


def test_reservations_one_interval_apart_on_the_stores_clock(store: RateStore) -> None:
    key = "kwtsms:rate:test-spacing"
    waits = [store.reserve(key, 0.5, now=1000.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert store.reserve(key, 0.5, now=1010.0) == pytest.approx(0.0)  # idle: no burst saved up


def test_hold_delays_every_sharer(store: RateStore) -> None:
    key = "kwtsms:rate:test-hold"
    store.reserve(key, 0.5, now=2000.0)
    store.hold(key, 3.0, now=2000.0)
    assert store.reserve(key, 0.5, now=2000.0) == pytest.approx(3.0)


def test_concurrent_reservations_never_share_a_slot(make_store: Callable[[], RateStore]) -> None:
    key = "kwtsms:rate:test-concurrent"
    waits: list[float] = []
    lock = threading.Lock()
    stores = [make_store() for _ in range(4)]

    errors: list[BaseException] = []

    def worker(store: RateStore) -> None:
        try:
            mine = [store.reserve(key, 0.5, now=3000.0) for _ in range(10)]
        except BaseException as exc:  # a thread's error would otherwise vanish
            errors.append(exc)
            return
        with lock:
            waits.extend(mine)

    threads = [threading.Thread(target=worker, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []  # on a fresh database, the four first requests race to create the table
    assert sorted(round(w, 6) for w in waits) == [i * 0.5 for i in range(40)]


def test_the_store_clock_is_used_when_none_is_given(store: RateStore) -> None:
    bucket = SharedBucket(store, "kwtsms:rate:test-clock", 5.0, sleep=lambda s: None)
    begun = time.monotonic()
    first, second = bucket.acquire(), bucket.acquire()
    between = time.monotonic() - begun  # bounds the server's time between the two reservations
    assert first == 0.0  # a new key: no wait
    # one interval (0.22 s at 5 a second) on the server's real clock, less the time that passed
    # there between the two: bounded, not measured, so a busy machine cannot fail it
    assert interval(5.0) - between <= second <= interval(5.0) + 1e-6
