"""The shared limiter (shared_rate.py) on a fake clock: several processes, one account's cap.

The Redis and Postgres stores run the same rule in the store; they are tested against real
servers in tests/deploy/test_deploy_rate_store.py.
"""

from __future__ import annotations

import itertools

import pytest

from airflow_provider_kwtsms.client import KwtSMSClient
from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.machine_rate import MachineBucket
from airflow_provider_kwtsms.pacing import interval
from airflow_provider_kwtsms.shared_rate import (
    MemoryRateStore,
    SharedBucket,
    describe,
    gcra_hold,
    gcra_reserve,
    open_store,
    shared_key,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


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
    clock = FakeClock()
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
    from airflow_provider_kwtsms.pacing import TokenBucket

    clock = FakeClock()
    buckets = [TokenBucket(2.0, clock=clock, sleep=lambda s: None) for _ in range(10)]
    assert [b.reserve() for b in buckets] == [0.0] * 10


def test_pause_holds_every_process_sharing_the_key() -> None:
    clock = FakeClock()
    store = MemoryRateStore(clock)
    one = SharedBucket(store, "acct", 2.0, clock=clock, sleep=lambda s: None)
    two = SharedBucket(store, "acct", 2.0, clock=clock, sleep=lambda s: None)
    other_account = SharedBucket(store, "other", 2.0, clock=clock, sleep=lambda s: None)
    one.pause(3.0)  # a 429 with Retry-After: 3 seen by process one
    assert two.acquire() == pytest.approx(3.0)
    assert other_account.acquire() == 0.0


def test_acquire_sleeps_the_reserved_wait() -> None:
    clock = FakeClock()
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
    clock = FakeClock()
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
    from airflow_provider_kwtsms import shared_rate

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
    with pytest.raises(ValueError, match="unknown scheme 'mysql'.*redis://host:6379/0") as error:
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
