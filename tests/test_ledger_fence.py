"""Fencing (ledger_fence): two tries of one send that overlap never send a number twice.

Real threads, real clients over loopback to the sandbox, one shared store, the real clock (the
fence is about the order of real events: a fake clock that one thread's sleep moves for all would
let a newer try judge an older try's request before that request had even left). The sandbox
refuses nothing on its own here (no same-number window, no firewall), so a number sent twice is
delivered twice and counted.

``KWTSMS_FENCE_RACES`` sets how many races each case runs (default 1 in the suite; the closing
note of issue 21 quotes a longer run).
"""

from __future__ import annotations

import os
import threading
import types
from collections import Counter

import pytest

from airflow_provider_kwtsms.gateway.client import MAX_BATCH, KwtSMSClient
from airflow_provider_kwtsms.ledger.fence import OWNER_KEY, YIELD_PREFIX
from airflow_provider_kwtsms.ledger.resume import (
    HEAD_KEY,
    BatchState,
    Ledger,
    MemoryStore,
    SupersededError,
    delete_ledger,
    resume_send,
)
from airflow_provider_kwtsms.send.results import SENT, SKIPPED, SendPlan
from airflow_provider_kwtsms.text.message import measure_message

PENDING = BatchState.PENDING

RACES = int(os.environ.get("KWTSMS_FENCE_RACES", "1"))


def make_plan(n: int, start: int = 0) -> SendPlan:
    numbers = [f"9656{i:07d}" for i in range(start, start + n)]
    recipients = types.SimpleNamespace(valid=numbers, invalid=[], duplicates=[], total_inputs=n)
    message = "Fence test"
    return SendPlan(
        recipients=recipients,
        message=message,
        info=measure_message(message),
        sender="KWT-SMS",
        test=False,
        batches=[numbers[i : i + MAX_BATCH] for i in range(0, n, MAX_BATCH)],
        estimate=n * measure_message(message).pages,
    )


@pytest.fixture
def sandbox(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(balance=10_000_000, duplicate_window=0, firewall=False)


def client_for(sandbox, **options) -> KwtSMSClient:
    # The default pacer: every client of the machine shares the 5 a second (machine_rate).
    return KwtSMSClient("sandbox_user", "sandbox_pass", base_url=sandbox.url, deadline=2.0, **options)


class Try(threading.Thread):
    """One try of the send, in its own thread, as a second worker would run it."""

    def __init__(self, client, plan, store, try_number: int, lease: float | None = None) -> None:
        super().__init__(name=f"try-{try_number}")
        self.client, self.plan, self.store, self.try_number = client, plan, store, try_number
        self.lease = lease
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        options = {} if self.lease is None else {"fence_lease": self.lease}
        try:
            self.result = resume_send(
                self.client, self.plan, self.store, try_number=self.try_number, **options
            )
        except BaseException as exc:  # the test reads it
            self.error = exc


def race(sandbox, plan, delay: float, lease: float | None = None) -> tuple[Try, Try]:
    store = MemoryStore()
    older = Try(client_for(sandbox), plan, store, 1, lease)
    newer = Try(client_for(sandbox), plan, store, 2, lease)
    older.start()
    threading.Event().wait(delay)
    newer.start()
    older.join(60)
    newer.join(60)
    assert not older.is_alive() and not newer.is_alive()
    return older, newer


def once_each(sandbox, plan) -> tuple[int, int]:
    """(numbers sent twice or more, numbers never sent) since the last reset."""
    counts = Counter(sandbox.delivery_counts())
    expected = [n for batch in plan.batches for n in batch]
    return sum(1 for n in expected if counts[n] > 1), sum(1 for n in expected if counts[n] == 0)


DELAYS = [0.0, 0.0, 0.01, 0.05, 0.1, 0.2]


@pytest.mark.parametrize("delay", DELAYS, ids=[f"{int(d * 1000)}ms" for d in DELAYS])
def test_two_tries_racing_send_every_number_once(sandbox, delay):
    """Started together or up to 200 ms apart: one try sends, the other stops; every one of
    the 1,000 numbers once (the old code: all 1,000 twice when started together)."""
    plan = make_plan(1000)
    for run in range(RACES):
        sandbox.reset()
        older, newer = race(sandbox, plan, delay)
        outcomes = sorted(type(t.error).__name__ if t.error else "done" for t in (older, newer))
        twice, missing = once_each(sandbox, plan)
        assert (twice, missing) == (0, 0), f"race {run}: {twice} twice, {missing} missing, {outcomes}"
        assert outcomes == ["SupersededError", "done"], (
            f"race {run}: {outcomes} {older.error!r} {newer.error!r}"
        )
        winner = older if older.error is None else newer
        assert [b.state for b in winner.result.batches if b.state not in (SENT, SKIPPED)] == []


def test_a_short_lease_renews_every_batch_and_still_sends_each_once(sandbox):
    """A lease shorter than the pace (0.2 s at 5 a second): every request renews it first."""
    plan = make_plan(1000)
    for run in range(RACES):
        sandbox.reset()
        older, newer = race(sandbox, plan, 0.05 * run, lease=0.1)
        assert once_each(sandbox, plan) == (0, 0), f"race {run}"
        assert sorted(bool(t.error) for t in (older, newer)) == [False, True]


def test_the_older_try_stops_at_its_next_batch_and_the_newer_accounts_for_what_it_sent(sandbox):
    """The older try is mid-send when the newer one claims: it sends nothing more, and every batch
    it sent shows in the newer try's result with its msg-id (from its yield record)."""
    plan = make_plan(1400)
    store = MemoryStore()
    older = Try(client_for(sandbox), plan, store, 1)
    older.start()
    while len(sandbox.messages()) < 3:  # three batches out
        threading.Event().wait(0.01)
    newer = Try(client_for(sandbox), plan, store, 2)
    newer.start()
    older.join(60)
    newer.join(60)
    assert isinstance(older.error, SupersededError), older.error
    assert "newer try" in str(older.error)
    assert newer.error is None, newer.error
    assert once_each(sandbox, plan) == (0, 0)
    by_older = [b for b in newer.result.batches if b.state == SKIPPED]
    assert len(by_older) >= 3 and all(b.msg_id for b in by_older)
    sent_ids = {m["msg_id"] for m in sandbox.messages()}
    assert {b.msg_id for b in newer.result.batches} == sent_ids


class FrozenBeforeRequest(KwtSMSClient):
    """Freezes (as SIGSTOP would) after its turn, just before the request of batch ``at``."""

    max_in_flight = 1
    at = 2

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frozen = threading.Event()
        self.thaw = threading.Event()
        self.delivered = 0

    def pace(self) -> None:
        super().pace()
        # The turn of batch ``at`` (one request at a time, no read between): frozen before the
        # engine calls the fence's guard.
        if self.delivered == self.at and not self.thaw.is_set():
            self.frozen.set()
            self.thaw.wait(60)

    def deliver(self, batch):
        self.delivered += 1
        return super().deliver(batch)


def test_a_try_frozen_past_its_lease_sends_nothing_when_it_wakes(sandbox):
    """The older try freezes with batch 3 recorded pending, just before its request; the newer
    try waits until that request could have ended, judges it from the balance (not sent), sends
    everything; then the older one wakes: its lease is long gone, it finds the newer owner and
    sends nothing."""
    plan = make_plan(1000)
    store = MemoryStore()
    frozen = FrozenBeforeRequest("sandbox_user", "sandbox_pass", base_url=sandbox.url, deadline=1.0)
    older = Try(frozen, plan, store, 1)
    older.start()
    assert frozen.frozen.wait(30)
    assert Ledger.load(store).state(2) == PENDING
    newer = Try(client_for(sandbox), plan, store, 2)
    newer.run()  # in this thread: it must finish while the older try is frozen
    assert newer.error is None, newer.error
    assert once_each(sandbox, plan) == (0, 0)
    frozen.thaw.set()
    older.join(60)
    assert isinstance(older.error, SupersededError), older.error
    assert once_each(sandbox, plan) == (0, 0)


def test_a_try_that_yielded_costs_the_next_no_wait_and_the_ledger_deletes_every_fence_key(sandbox):
    plan = make_plan(400)
    store = MemoryStore()
    sandbox.inject_fault("drop_after_accept", "send")  # batch 1's answer lost, on_uncertain fails
    first = Try(client_for(sandbox), plan, store, 1)
    first.run()
    assert first.error is not None
    assert any(k.startswith(YIELD_PREFIX) for k in store.data)  # it said: nothing of mine in the air
    second = Try(client_for(sandbox), plan, store, 2)
    second.run()
    assert once_each(sandbox, plan)[0] == 0
    delete_ledger(store)
    assert [k for k in store.data if k.startswith(HEAD_KEY)] == []
    assert OWNER_KEY not in store.data


@pytest.mark.parametrize("delay", [0.0, 0.1])
def test_two_tries_racing_over_the_email_channel_send_every_number_once(kwtsms_sandbox_factory, delay):
    """The same fence for the SMTP channel: one e-mail per batch, at most once."""
    from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender

    sb = kwtsms_sandbox_factory(smtp_port=0, balance=1_000_000, duplicate_window=0, firewall=False)

    def sender() -> KwtSMSSmtpSender:
        return KwtSMSSmtpSender(
            "sandbox_user",
            "sandbox_pass",
            smtp_host="127.0.0.1",
            smtp_port=sb.smtp_port,
            from_address="alerts@example.com",
            timeout=2.0,
        )

    plan = sender().plan_send([f"9655{i:07d}" for i in range(1000)], "Fence by e-mail")
    store = MemoryStore()
    older, newer = Try(sender(), plan, store, 1), Try(sender(), plan, store, 2)
    older.start()
    threading.Event().wait(delay)
    newer.start()
    older.join(60)
    newer.join(60)
    assert sorted(type(t.error).__name__ if t.error else "done" for t in (older, newer)) == [
        "SupersededError",
        "done",
    ]
    counts = Counter(n for email in sb.emails() if email["outcome"] == "accepted" for n in email["mobile"])
    assert sorted(set(counts.values())) == [1] and len(counts) == 1000


def test_a_damaged_ledger_is_deleted_whole_with_its_fence_keys(sandbox):
    plan = make_plan(400)
    store = MemoryStore()
    resume_send(client_for(sandbox), plan, store, try_number=1)
    store.data[HEAD_KEY] = "{not json"
    delete_ledger(store)
    assert store.data == {}
