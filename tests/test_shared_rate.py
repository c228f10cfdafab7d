"""The shared limiter (shared_rate.py) on a fake clock: several processes, one account's cap.

The Redis and Postgres stores run the same rule in the store; they are tested against real
servers in tests/deploy/test_deploy_rate_store.py.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading

import pytest
from sandbox_helpers import FakeTime

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.rate.bucket import interval
from airflow_provider_kwtsms.rate.machine import MachineBucket, gateway_target
from airflow_provider_kwtsms.rate.shared import (
    MemoryRateStore,
    SharedBucket,
    describe,
    gcra_hold,
    gcra_reserve,
    max_wait,
    open_store,
    shared_key,
)


def test_gcra_spaces_request_starts_one_interval_apart() -> None:
    tat = None
    starts = []
    for _ in range(5):  # five requests asked for at the same moment
        tat, wait = gcra_reserve(tat, 10.0, 0.5)
        starts.append(10.0 + wait)
    assert starts == [10.0, 10.5, 11.0, 11.5, 12.0]


def test_gcra_saves_no_burst_over_an_idle_time() -> None:
    tat, _ = gcra_reserve(None, 0.0, 0.5)
    tat, first = gcra_reserve(tat, 100.0, 0.5)  # long idle
    tat, second = gcra_reserve(tat, 100.0, 0.5)
    assert (first, second) == (0.0, 0.5)  # no tokens piled up: the cap holds in every window


def test_gcra_hold_never_shortens_a_later_reservation() -> None:
    assert gcra_hold(None, 5.0, 2.0) == 7.0
    assert gcra_hold(20.0, 5.0, 2.0) == 20.0


def test_ten_processes_sharing_one_store_never_exceed_the_rate() -> None:
    clock = FakeTime()
    store = MemoryRateStore(clock)
    buckets = [SharedBucket(store, "acct", 2.0, clock=clock, sleep=lambda s: None) for _ in range(10)]
    starts = []
    for round_ in range(5):
        for bucket in buckets:  # every process asks at the same moment of this round
            starts.append(clock() + bucket.acquire())
        clock.now += 0.1 * round_  # the processes drift a little
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.5 - 1e-9  # all ten together: 2 requests per second, not 20
    assert len(starts) == 50


def test_separate_buckets_without_a_store_would_go_over() -> None:
    """Why the shared store: ten TokenBuckets (one per process) allow ten requests at once."""
    from airflow_provider_kwtsms.rate.bucket import TokenBucket

    clock = FakeTime()
    buckets = [TokenBucket(2.0, clock=clock, sleep=lambda s: None) for _ in range(10)]
    assert [b.reserve() for b in buckets] == [0.0] * 10


def test_pause_holds_every_process_sharing_the_key() -> None:
    clock = FakeTime()
    store = MemoryRateStore(clock)
    one = SharedBucket(store, "acct", 2.0, clock=clock, sleep=lambda s: None)
    two = SharedBucket(store, "acct", 2.0, clock=clock, sleep=lambda s: None)
    other_account = SharedBucket(store, "other", 2.0, clock=clock, sleep=lambda s: None)
    one.pause(3.0)  # a 429 with Retry-After: 3 seen by process one
    assert two.acquire() == pytest.approx(3.0)
    assert other_account.acquire() == 0.0


def test_acquire_sleeps_the_reserved_wait() -> None:
    clock = FakeTime()
    store = MemoryRateStore(clock)
    bucket = SharedBucket(store, "acct", 4.0, clock=clock, sleep=clock.sleep)
    start = clock()
    for _ in range(5):
        bucket.acquire()
    # 5 starts at 4/s: the last one 4 intervals (1 s and the jitter guard) after the first
    assert clock() - start == pytest.approx(4 * interval(4.0))


class BrokenStore:
    def reserve(self, key: str, interval: float, now: float | None = None) -> float:
        raise ConnectionError("store down")

    def hold(self, key: str, seconds: float, now: float | None = None) -> None:
        raise ConnectionError("store down")


def test_a_store_that_is_down_falls_back_to_this_process_pace(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeTime()
    bucket = SharedBucket(BrokenStore(), "acct", 2.0, clock=clock, sleep=clock.sleep, where="redis://h:1/0")
    bucket.acquire()
    bucket.acquire()
    bucket.pause(1.0)
    assert clock() == pytest.approx(1000 + interval(2.0))  # local pacing: one interval between the two
    assert "redis://h:1/0 unavailable" in caplog.text
    assert caplog.text.count("unavailable") == 1  # once per outage, not once per request


def test_a_store_that_is_down_falls_back_to_the_machine_pacer(tmp_path, monkeypatch) -> None:
    # Not a bucket per process: the processes of this machine still share one pace.
    monkeypatch.setenv("KWTSMS_RATE_DIR", str(tmp_path))
    from airflow_provider_kwtsms.rate import shared as shared_rate

    monkeypatch.setattr(shared_rate, "open_store", lambda url, **options: BrokenStore())
    bucket = shared_rate.shared_bucket(
        "redis://127.0.0.1:9/0", username="acct", base_url="http://127.0.0.1:9", rate=5
    )
    assert isinstance(bucket._local, MachineBucket) and bucket._local.shared
    bucket.acquire()
    assert list(tmp_path.iterdir()) == [tmp_path / bucket._local.path.rsplit("/", 1)[-1]]


def test_describe_hides_the_store_password() -> None:
    assert describe("redis://:s3cret@10.0.0.5:6379/1") == "redis://10.0.0.5:6379/1"
    assert "s3cret" not in describe("postgresql://u:s3cret@db/rates")


def test_an_unknown_store_scheme_is_refused_with_what_to_give() -> None:
    with pytest.raises(ValueError, match=r"unknown scheme 'mysql'.*redis://host:6379/0") as error:
        open_store("mysql://u:s3cret@db/x")
    assert "s3cret" not in str(error.value)


@pytest.mark.parametrize("rate", [0, -1, float("nan"), 6, float("inf")])
def test_the_rate_must_be_from_a_tenth_to_five(rate) -> None:
    with pytest.raises(KwtSMSInputError, match=r"from 0\.1 to 5"):
        SharedBucket(MemoryRateStore(), "acct", rate)


class CountingPacer:
    def __init__(self) -> None:
        self.acquired = 0
        self.paused: list[float] = []

    def acquire(self) -> float:
        self.acquired += 1
        return 0.0

    def pause(self, seconds: float) -> None:
        self.paused.append(seconds)


def test_the_client_paces_with_the_pacer_it_is_given(kwtsms_sandbox_factory) -> None:
    kwtsms_sandbox = kwtsms_sandbox_factory(rate=None)  # no cap: the pacer here never waits
    pacer = CountingPacer()
    client = KwtSMSClient(
        kwtsms_sandbox.username, "sandbox_pass", base_url=kwtsms_sandbox.url, rate=5, pacer=pacer
    )
    client.balance()
    client.send([f"9655{i:07d}" for i in range(450)], "hello")
    # A balance call and three batches of 200 (the coverage list is read only when it saves requests).
    assert pacer.acquired == 1 + 3


def test_the_connection_extra_rate_store_gives_the_client_a_shared_bucket() -> None:
    from airflow.sdk import Connection

    from airflow_provider_kwtsms.hooks.kwtsms import build_client, settings_from_connection

    conn = Connection(
        conn_id="k",
        conn_type="kwtsms",
        login="acct",
        password="secret-pw",
        host="http://127.0.0.1:9",
        extra='{"rate": 2, "rate_store": "redis://:store-pw@127.0.0.1:9/1"}',
    )
    settings = settings_from_connection(conn)
    assert "store-pw" not in repr(settings)
    client = build_client(settings)
    pacer = client._bucket
    assert isinstance(pacer, SharedBucket)
    assert pacer.key == shared_key("acct", "http://127.0.0.1:9") and pacer.rate == 2.0
    assert "store-pw" not in repr(vars(pacer))  # only scheme, host, port and database kept
    assert isinstance(pacer._local, MachineBucket) and pacer._local.target == "127.0.0.1:9"


def test_without_rate_store_the_client_shares_this_machines_pace(tmp_path, monkeypatch) -> None:
    from airflow.sdk import Connection

    from airflow_provider_kwtsms.hooks.kwtsms import build_client, settings_from_connection

    monkeypatch.setenv("KWTSMS_RATE_DIR", str(tmp_path))
    conn = Connection(conn_id="k", conn_type="kwtsms", login="acct", password="pw", host="http://127.0.0.1:9")
    pacer = build_client(settings_from_connection(conn))._bucket
    assert isinstance(pacer, MachineBucket) and pacer.shared and pacer.path.startswith(str(tmp_path))


# -- issue 21: the store is never a reason to wait without limit ---------------------------------


class CountingStore(MemoryRateStore):
    """A memory store that can be made to fail or to hang, and counts the calls it was given."""

    def __init__(self, clock) -> None:
        super().__init__(clock)
        self.calls = 0
        self.failing = False
        self.gate = threading.Event()
        self.gate.set()

    def reserve(self, key: str, interval: float, now: float | None = None) -> float:
        self.calls += 1
        self.gate.wait()  # cleared: a server that accepts and never answers
        if self.failing:
            raise ConnectionError("store down")
        return super().reserve(key, interval, now)


def shared(store, clock, **options) -> SharedBucket:
    return SharedBucket(store, "acct", 5.0, clock=clock, sleep=clock.sleep, where="redis://h:1/0", **options)


def test_a_failing_store_is_skipped_for_a_while_then_probed_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="airflow_provider_kwtsms.rate.shared")
    clock = FakeTime()
    store = CountingStore(clock)
    bucket = shared(store, clock, pause_for=30.0)
    store.failing = True
    for _ in range(20):  # 20 requests: the store is asked once, then skipped
        bucket.acquire()
    assert store.calls == 1
    clock.now += 30.0
    bucket.acquire()  # one probe: still down
    bucket.acquire()
    assert store.calls == 2
    store.failing = False
    clock.now += 30.0
    bucket.acquire()  # the probe: back
    bucket.acquire()
    assert store.calls == 4  # shared again, every request
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning for the outage, not one per request or probe
    assert "redis://h:1/0 unavailable (ConnectionError: store down)" in warnings[0]
    assert "for the next 30 s" in warnings[0] and "each machine paces alone" in warnings[0]
    assert "answers again" in caplog.text


def test_a_store_that_never_answers_costs_one_timeout_not_one_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeTime()
    store = CountingStore(clock)
    store.gate.clear()  # accepts, never answers
    bucket = shared(store, clock, timeout=0.05)
    for _ in range(20):
        bucket.acquire()
    assert store.calls == 1  # the one call still waits; no other is begun while it does
    assert caplog.text.count("unavailable (no answer within 0.05 s)") == 1
    clock.now += 60.0
    bucket.acquire()  # the breaker's time is over, but the old call has not come back: still down
    assert store.calls == 1
    store.gate.set()  # the server wakes up
    for _ in range(100):
        if bucket._stuck is None or not bucket._stuck.is_alive():
            break
        threading.Event().wait(0.01)
    bucket.acquire()  # the probe
    assert store.calls == 2 and not bucket._down


def test_a_store_clock_that_steps_back_an_hour_is_a_fault_not_a_3600_s_sleep(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store_clock = FakeTime(10_000.0)
    store = MemoryRateStore(store_clock)
    clock = FakeTime()
    slept: list[float] = []
    bucket = SharedBucket(store, "acct", 5.0, sleep=slept.append, monotonic=clock, where="pg://db/x")
    bucket.acquire()
    store_clock.now -= 3600.0  # the store's clock steps back an hour
    waited = bucket.acquire()
    assert max(slept, default=0.0) < max_wait(5.0) < 30  # not 3,600 s
    assert waited < 1.0  # paced on this machine instead
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "answered a wait of 3600" in line and "stepped back" in line
    assert store.reserve("acct", 0.2) == 0.0  # the row was reset: the next probe finds it sane
    clock.now += 31.0
    slept.clear()
    bucket.acquire()
    assert not bucket._down and max(slept, default=0.0) < 1.0


@pytest.mark.parametrize("answer", [float("nan"), -5.0, 1e9, float("inf")])
def test_an_untrusted_wait_is_never_slept(answer: float) -> None:
    class Liar(MemoryRateStore):
        def reserve(self, key: str, interval: float, now: float | None = None) -> float:
            return answer

    clock = FakeTime()
    bucket = shared(Liar(clock), clock)
    bucket.acquire()
    assert bucket._down and clock() - 1000.0 < 1.0


def test_max_wait_covers_a_hold_and_64_queued_turns_at_every_rate() -> None:
    assert max_wait(5.0) == pytest.approx(10.2 + 64 * 0.22)  # six starts in 1.1 s at the firewall's pace
    assert max_wait(0.1) == pytest.approx(10.2 + 64 * 10.2)


def test_a_retry_after_longer_than_the_store_keeps_still_holds_this_process() -> None:
    clock = FakeTime()
    store = MemoryRateStore(clock)
    bucket = shared(store, clock)
    other = shared(store, clock)
    bucket.pause(60.0)
    assert other.acquire() == pytest.approx(10.2)  # the store keeps at most MAX_HOLD
    assert bucket.acquire() >= 60.0 - 10.2 - 1e-6  # this process waits out its own Retry-After


@pytest.mark.parametrize(
    "spelling",
    ["https://api.example", "https://api.example:443", "https://API.Example.", "https://api.example/",
     "HTTPS://api.example:443/API/", " https://api.example.:443/x?y#z "],
)  # fmt: skip
def test_one_key_per_account_and_gateway_whatever_the_urls_spelling(spelling: str) -> None:
    assert shared_key("acct", spelling) == shared_key("acct", "https://api.example")
    assert gateway_target(spelling) == "api.example:443"  # the machine pacer's file: the same rule


def test_keys_differ_by_account_gateway_and_port() -> None:
    keys = {
        shared_key("acct", "https://api.example"),
        shared_key("acct2", "https://api.example"),
        shared_key("acct", "https://api2.example"),
        shared_key("acct", "http://api.example"),
        shared_key("acct", "https://api.example:8443"),
        shared_key("a", "cct@https://api.example"),
    }
    assert len(keys) == 6


def test_any_user_name_makes_a_short_plain_key() -> None:
    rng = random.Random(21)
    noisy = "".join(chr(rng.randrange(1, 0x10FFFF)) for _ in range(10_000)).replace("\ud800", "x")
    for username in ("a\x00b", noisy, "\udcff", ""):
        key = shared_key(username, "https://www.kwtsms.com")
        assert key.startswith("kwtsms:rate:") and len(key) == 12 + 64 and key.isascii()


def test_the_hook_masks_the_store_password_in_task_logs(monkeypatch) -> None:
    from airflow.sdk import Connection

    from airflow_provider_kwtsms import version_compat
    from airflow_provider_kwtsms.hooks.kwtsms import build_client, settings_from_connection

    masked: list[str] = []
    monkeypatch.setattr(version_compat, "mask_secret", masked.append)
    url = "redis://:pass/Word42@127.0.0.1:9/1"
    conn = Connection(
        conn_id="k", conn_type="kwtsms", login="acct", password="pw", host="http://127.0.0.1:9",
        extra=json.dumps({"rate_store": url}),
    )  # fmt: skip
    pacer = build_client(settings_from_connection(conn))._bucket
    assert "pass/Word42" in masked and url in masked
    assert "Word42" not in repr(pacer) and repr(pacer) == "SharedBucket(rate=2, redis://127.0.0.1:9/1)"


def test_the_masked_extra_rate_store_password_reaches_the_store(monkeypatch) -> None:
    from airflow.sdk import Connection

    from airflow_provider_kwtsms.hooks.kwtsms import build_client, settings_from_connection
    from airflow_provider_kwtsms.rate import shared as shared_rate

    opened: list = []
    monkeypatch.setattr(
        shared_rate, "open_store", lambda where, **options: opened.append(where) or MemoryRateStore()
    )
    extra = {"rate_store": "postgresql://kwtsms@127.0.0.1:9/rates", "rate_store_password": "Hidden/#42"}
    conn = Connection(conn_id="k", conn_type="kwtsms", login="acct", password="pw", extra=json.dumps(extra))
    build_client(settings_from_connection(conn))
    assert opened[0].password == "Hidden/#42" and opened[0].username == "kwtsms"
    extra["rate_store"] = "postgresql://kwtsms:Other@127.0.0.1:9/rates"
    conn = Connection(conn_id="k", conn_type="kwtsms", login="acct", password="pw", extra=json.dumps(extra))
    with pytest.raises(KwtSMSInputError, match=r"Connection 'k' extra 'rate_store'.*keep one") as error:
        build_client(settings_from_connection(conn))
    assert "Other" not in str(error.value) and "Hidden" not in str(error.value)
