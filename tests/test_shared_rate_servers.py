"""The shared limiter against real, misbehaving stores on loopback: never a wait without limit.

A Postgres and a Redis of this machine (the deploy prerequisites: ``.ci/install-deploy.sh``),
started as tests/deploy/harness.py starts them; skipped where they are not installed. A stopped
server is every process of it stopped with SIGSTOP (a frozen host: the kernel still accepts
and acknowledges, no process answers); a held row lock is another connection's SELECT ... FOR
UPDATE; a silent server is a loopback socket that accepts and never answers. The store's call
timeout is injected small (0.3 s) and the breaker's clock is a fake one, so nothing here asserts
elapsed time: what is counted is the calls begun on the store and the warnings logged.
"""

from __future__ import annotations

import logging
import random
import signal
import socket
import threading
from pathlib import Path

import pytest
from sandbox_helpers import FakeTime
from store_servers import server_or_skip, signal_server, store_url

from airflow_provider_kwtsms.rate.machine import MachineBucket
from airflow_provider_kwtsms.rate.shared import (
    SharedBucket,
    max_wait,
    open_store,
    shared_bucket,
    shared_key,
)
from airflow_provider_kwtsms.rate.store_url import parse_store_url

TIMEOUT = 0.3
LOGGER = "airflow_provider_kwtsms.rate.shared"


class Counted:
    """Counts the store calls begun through it (the proof that a down store is skipped)."""

    def __init__(self, store) -> None:
        self.store = store
        self.begun = 0

    def reserve(self, *args):
        self.begun += 1
        return self.store.reserve(*args)

    def hold(self, *args):
        self.begun += 1
        return self.store.hold(*args)

    def repair(self, *args):
        return self.store.repair(*args)


def bucket_on(
    url: str, tmp_path: Path, monotonic: FakeTime, *, key: str = "kwtsms:rate:test"
) -> SharedBucket:
    where = parse_store_url(url)
    return SharedBucket(
        Counted(open_store(where, timeout=TIMEOUT)),
        key,
        5.0,
        where=where.shown,
        fallback=MachineBucket("127.0.0.1:9", 5.0, directory=str(tmp_path)),
        timeout=TIMEOUT,
        monotonic=monotonic,
        scrub=where.scrub,
    )


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def wait_until(check, limit: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(limit / 0.05)):
        if check():
            return True
        done.wait(0.05)
    return check()


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_stopped_store_costs_one_timeout_then_is_skipped_with_one_warning(
    kind: str, servers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = server_or_skip(servers, kind)
    monotonic = FakeTime(10_000.0)
    bucket = bucket_on(store_url(servers, kind), tmp_path, monotonic)
    bucket.acquire()  # connected, shared
    bucket.started()
    assert not bucket._down
    signal_server(server, signal.SIGSTOP)
    try:
        for _ in range(20):  # a 20-request send
            bucket.acquire()
            bucket.started()
        begun = bucket._store.begun
        assert begun == 3  # the two calls before the stop, and the one that got no answer
        (line,) = warnings(caplog)
        assert f"unavailable (no answer within {TIMEOUT:g} s)" in line or "Timeout" in line
        monotonic.now += 31.0  # the breaker's time is over: one probe, still stopped
        bucket.acquire()
        assert bucket._store.begun <= begun + 1 and len(warnings(caplog)) == 1
    finally:
        signal_server(server, signal.SIGCONT)
    assert wait_until(lambda: bucket._stuck is None or not bucket._stuck.is_alive())
    monotonic.now += 31.0
    bucket.acquire()  # back
    assert not bucket._down


def test_a_held_row_lock_is_given_up_by_the_server_too(servers, tmp_path: Path, caplog) -> None:
    import psycopg

    url = store_url(servers, "postgres")
    monotonic = FakeTime(10_000.0)
    bucket = bucket_on(url, tmp_path, monotonic, key="kwtsms:rate:locked")
    bucket.acquire()
    with psycopg.connect(url) as holder:  # a transaction: the row stays locked until it ends
        holder.execute("SELECT tat FROM kwtsms_rate WHERE key = 'kwtsms:rate:locked' FOR UPDATE")
        bucket.acquire()
        assert bucket._down and len(warnings(caplog)) == 1
        # The call that waited on the lock ended on the server's lock_timeout while the lock is
        # still held (before: it waited for the lock without limit).
        assert wait_until(lambda: bucket._stuck is None or not bucket._stuck.is_alive())
        holder.rollback()
    monotonic.now += 31.0
    bucket.acquire()
    assert not bucket._down


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_silent_server_costs_one_timeout_not_one_per_request(kind: str, tmp_path: Path, caplog) -> None:
    pytest.importorskip("psycopg" if kind == "postgres" else "redis")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts (the kernel does), never answers
    try:
        port = silent.getsockname()[1]
        url = f"postgresql://u@127.0.0.1:{port}/x" if kind == "postgres" else f"redis://127.0.0.1:{port}/0"
        bucket = bucket_on(url, tmp_path, FakeTime(10_000.0))
        for _ in range(20):
            bucket.acquire()
        assert bucket._store.begun == 1
        assert len(warnings(caplog)) == 1
    finally:
        silent.close()


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_any_user_name_shares_the_cap(kind: str, servers, tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("KWTSMS_RATE_DIR", str(tmp_path))
    rng = random.Random(21)
    noisy = "".join(chr(rng.randrange(1, 0xD800)) for _ in range(10_000))
    for username in ("acct\x00nul", noisy):
        bucket = shared_bucket(
            store_url(servers, kind), username=username, base_url="https://h.example", rate=5
        )
        bucket.acquire()
        bucket.started()
        assert not bucket._down, warnings(caplog)
        other = shared_bucket(
            store_url(servers, kind), username=username, base_url="https://H.example.:443/", rate=5
        )
        assert other.key == bucket.key
        # One cap: the same row. Asked "as of time 0", a row the first bucket wrote answers a
        # wait up to its time (the store's epoch seconds); a new row would answer 0. No real
        # time is measured (a wait > 0.1 s once failed on a loaded CI machine).
        assert other._store.reserve(other.key, 0.2, now=0.0) > 1e6
    assert warnings(caplog) == []


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_store_clock_stepped_back_is_reset_in_the_store(kind: str, servers, tmp_path: Path, caplog) -> None:
    url = store_url(servers, kind)
    store = open_store(url, timeout=TIMEOUT)
    key = shared_key(f"clock-{kind}", "https://h.example")
    store_clock = FakeTime(10_000.0)
    monotonic = FakeTime(10_000.0)
    slept: list[float] = []
    bucket = SharedBucket(
        store, key, 5.0, clock=store_clock, sleep=slept.append, monotonic=monotonic, timeout=TIMEOUT,
        fallback=MachineBucket("127.0.0.1:9", 5.0, directory=str(tmp_path)),
    )  # fmt: skip
    bucket.acquire()
    store_clock.now -= 3600.0
    bucket.acquire()
    assert max(slept, default=0.0) < max_wait(5.0)
    (line,) = warnings(caplog)
    assert "answered a wait of 3600" in line
    assert store.reserve(key, 0.2, store_clock()) == pytest.approx(0.0)  # the row was reset


def test_a_driver_error_in_the_warning_shows_no_user_or_password(servers, tmp_path: Path, caplog) -> None:
    server = server_or_skip(servers, "postgres")
    url = f"postgresql://kwtsms_Sup3r:p%zz/W#0rd@x@127.0.0.1:{server.port}/rates"
    bucket = bucket_on(url, tmp_path, FakeTime(10_000.0))
    bucket.acquire()
    (line,) = warnings(caplog)
    assert "does not exist" in line  # the driver's own words are kept...
    for piece in ("Sup3r", "kwtsms_", "p%zz", "W#0rd", "0rd@x"):  # ...not the URL's secrets
        assert piece not in line
    assert f"postgresql://127.0.0.1:{server.port}/rates unavailable" in line
