"""Requests in flight (batch_loop._Run): a send keeps as many requests out as the rate needs,
and the batch loop's promises hold with several of them out at once.

Real client, real sandbox over loopback, the sandbox's clock for the pacer (rate 5, no real time
spent waiting for turns). To have requests truly overlap, a held request (``Gated``) or the
sandbox's latency fault keeps an answer out for a moment of real time: the loop starts the next
request at its turn without waiting for it. Nothing here asserts elapsed time.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sandbox_helpers import SandboxTime, logged_sends

from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.send.batch_loop import PAUSED, run_batches
from airflow_provider_kwtsms.send.results import FAILED, SENT, BatchResult

USER, PASSWORD = "flight_user", "flight_pass"
HOLD = 10.0  # seconds a gate waits at most (a test that deadlocks fails instead of hanging)


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(username=USER, password=PASSWORD, rate=None, balance=1_000_000)


class Gated(KwtSMSClient):
    """Holds the request of batch ``held`` until ``release`` is set; counts requests out at once."""

    held = -1

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.release = threading.Event()
        self.after: dict[int, threading.Event] = {}  # batch -> set when its answer is back
        self.out = 0
        self.most_out = 0
        self.order: list[int] = []
        self._lock = threading.Lock()

    def deliver(self, batch):
        index = batch.index
        with self._lock:
            self.out += 1
            self.most_out = max(self.most_out, self.out)
        try:
            if index == self.held:
                assert self.release.wait(HOLD), "the loop never started the request that releases this one"
            with self._lock:
                self.order.append(index)
            return super().deliver(batch)
        finally:
            with self._lock:
                self.out -= 1
            self.after.setdefault(index, threading.Event()).set()


def gated(sb, cls=Gated, **options) -> Gated:
    vt = SandboxTime(sb)
    return cls(USER, PASSWORD, base_url=sb.url, rate=5, clock=vt.clock, sleep=vt.sleep, **options)


def numbers(count: int) -> list[str]:
    return [f"96550{i:06d}" for i in range(count)]


def test_the_pool_is_what_the_rate_needs_and_bounded():
    sizes = {rate: KwtSMSClient(USER, PASSWORD, rate=rate).max_in_flight for rate in (0.5, 1, 2, 5)}
    assert sizes == {0.5: 2, 1: 2, 2: 3, 5: 6}  # ceil(rate x 1 s) + 1: full rate for answers within 1 s


def test_answers_out_of_order_come_back_in_plan_order_each_accounted_once(sb):
    client = gated(sb)
    client.held = 0  # batch 1's request is held until batch 3 has its answer
    seen: list[tuple[int, int]] = []

    def release_after_batch_3(batch: BatchResult, done: int, total: int) -> None:
        seen.append((batch.index, done))
        if batch.index == 2:
            client.release.set()

    plan = client.plan_send(numbers(1000), "In flight", test=False)
    run = run_batches(client, plan, on_batch=release_after_batch_3)
    assert [b.index for b in run.batches] == [0, 1, 2, 3, 4]  # plan order
    assert all(b.state == SENT for b in run.batches)
    assert client.order.index(0) > client.order.index(2)  # batch 1 really went after batch 3
    assert client.most_out >= 2  # requests overlapped ...
    assert client.most_out <= client.max_in_flight  # ... within the bound
    assert [done for _, done in seen] == [1, 2, 3, 4, 5]  # on_batch once per batch
    assert Counter(n for m in sb.messages() for n in m["mobile"]) == Counter(numbers(1000))
    assert len(logged_sends(sb)) == 5


def test_an_outcome_that_stops_the_send_starts_no_new_request_and_the_one_in_flight_is_accounted(sb):
    client = gated(sb)
    client.held = 0  # batch 1 is in flight (held) when batch 2's outcome stops the send
    sb.set_balance(100)  # batch 2, the first request to arrive, is refused: ERR011 stops the send

    def on_batch(batch: BatchResult, done: int, total: int) -> None:
        if batch.index == 1:
            sb.set_balance(10_000)  # topped up: the request still in flight goes through
            client.release.set()

    plan = client.plan_send(numbers(1000), "Stop", test=False)
    run = run_batches(client, plan, on_batch=on_batch)
    states = [(b.state, b.error_code, b.attempted) for b in run.batches]
    assert states[0] == (SENT, None, True)  # in flight when the send stopped: finished, accounted
    assert states[1] == (FAILED, "ERR011", True)
    assert run.stopped_by is not None and run.stopped_by.index == 1
    assert states[2:] == [(FAILED, "ERR011", False)] * 3  # no new request started
    assert [r["code"] for r in logged_sends(sb)] == ["ERR011", "OK"]
    assert client.order == [1, 0]


def test_a_lost_answer_is_settled_once_no_request_is_in_flight(sb):
    # Batch 2's answer is lost while batch 1 is held in flight: the loop starts nothing more and
    # waits for batch 1's answer before settling batch 2 (its balance judgement needs every other
    # charge known).
    client = gated(sb)
    client.held = 0
    sb.inject_fault("drop_after_accept", "send", times=1)  # the first to arrive: batch 2's

    def release_when_batch_2_is_back() -> None:
        assert client.after.setdefault(1, threading.Event()).wait(HOLD)
        client.release.set()

    threading.Thread(target=release_when_batch_2_is_back, daemon=True).start()
    plan = client.plan_send(numbers(1000), "Lost", test=False)
    run = run_batches(client, plan)
    assert [b.state for b in run.batches] == [SENT, "uncertain", SENT, SENT, SENT]
    assert client.order[:2] == [1, 0]  # nothing started between the lost answer and batch 1's


class Journal:
    """A journal that asserts the loop's promises to the ledger: each batch recorded before its
    request leaves, settled once after it, all calls from one thread."""

    def __init__(self) -> None:
        self.pending: set[int] = set()
        self.settled: list[int] = []
        self.threads: set[int] = set()

    def _call(self) -> None:
        self.threads.add(threading.get_ident())

    def start(self) -> None:
        self._call()

    def recorded(self, index: int) -> BatchResult | None:
        self._call()
        return None

    def sending(self, index: int) -> None:
        self._call()
        assert index not in self.pending
        self.pending.add(index)

    def settle(self, index: int, result: BatchResult) -> BatchResult | None:
        self._call()
        self.pending.remove(index)
        self.settled.append(index)
        return result


class Recorded(KwtSMSClient):
    """Asserts, as each request leaves (in its worker thread), that the journal recorded it."""

    journal: Journal

    def deliver(self, batch):
        assert batch.index in self.journal.pending, f"batch {batch.index + 1} went out before it was recorded"
        return super().deliver(batch)


def test_every_batch_is_recorded_before_its_request_and_the_journal_is_called_from_one_thread(sb):
    client = gated(sb, cls=Recorded)
    client.journal = journal = Journal()
    sb.inject_fault("latency:0.3", "send", times=6)  # answers slower than the rate: requests overlap
    plan = client.plan_send(numbers(1200), "Journal", test=False)
    run = run_batches(client, plan, journal=journal)
    assert all(b.state == SENT for b in run.batches)
    assert sorted(journal.settled) == list(range(6)) and not journal.pending
    assert journal.threads == {threading.get_ident()}


def test_a_send_window_closing_mid_send_lets_the_requests_in_flight_finish_and_starts_no_more(sb):
    client = gated(sb)
    sb.inject_fault("latency:0.3", "send", times=10)
    answers = iter([True, True, True, False])
    plan = client.plan_send(numbers(2000), "Window", test=False)
    run = run_batches(client, plan, keep_going=lambda: next(answers))
    states = [(b.state, b.error_code) for b in run.batches]
    assert states == [(SENT, None)] * 3 + [(FAILED, PAUSED)] * 7
    assert run.paused and run.stopped_by is None
    assert len(logged_sends(sb)) == 3 and len(sb.messages()) == 3
