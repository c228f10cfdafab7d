"""The send ledger (no Airflow): real client, real sandbox over loopback, an in-memory store.

A "crash" is a worker dying at a chosen point: the store refusing a write (the process died
before it could record the answer) or the client dying before its request left.
"""

from __future__ import annotations

import types
from collections import Counter
from dataclasses import replace

import pytest
from sandbox_helpers import SandboxTime, frozen_clock, linked

from airflow_provider_kwtsms.gateway.client import MAX_BATCH, KwtSMSClient
from airflow_provider_kwtsms.ledger.codec import decode_chunk
from airflow_provider_kwtsms.ledger.journal import BASELINE_MIN_BATCHES
from airflow_provider_kwtsms.ledger.resume import (
    CHUNK_SIZE,
    HEAD_KEY,
    BatchState,
    Entry,
    Ledger,
    LedgerMismatchError,
    MemoryStore,
    UncertainBatchesError,
    fingerprint,
    judge_by_balance,
    resume_send,
)
from airflow_provider_kwtsms.send.results import FAILED, SENT, SKIPPED, UNCERTAIN, SendPlan
from airflow_provider_kwtsms.text.message import measure_message

DONE = BatchState.DONE
PENDING = BatchState.PENDING


class Died(BaseException):
    """The worker died here (BaseException: nothing in the send path may swallow it)."""


def make_plan(n: int, message: str = "Ledger test", *, test: bool = False, start: int = 0) -> SendPlan:
    numbers = [f"9656{i:07d}" for i in range(start, start + n)]
    recipients = types.SimpleNamespace(valid=numbers, invalid=[], duplicates=[], total_inputs=n)
    return SendPlan(
        recipients=recipients,
        message=message,
        info=measure_message(message),
        sender="KWT-SMS",
        test=test,
        batches=[numbers[i : i + MAX_BATCH] for i in range(0, n, MAX_BATCH)],
        estimate=n * measure_message(message).pages,
    )


class DyingStore(MemoryStore):
    """Dies on the n-th write of a batch entry in ``state`` (e.g. the 3rd "done")."""

    def __init__(self, state: str, nth: int) -> None:
        super().__init__()
        self.state, self.left = state, nth

    def set(self, key: str, value: str) -> None:
        if key.startswith(f"{HEAD_KEY}.c"):
            written = decode_chunk(value, 0)
            old = decode_chunk(self.data.get(key, "{}"), 0)
            changed = [e for k, e in written.items() if old.get(k) != e]
            if any(e.state == self.state for e in changed):
                self.left -= 1
                if self.left == 0:
                    raise Died(f"worker died writing '{self.state}'")
        super().set(key, value)


class HookedStore(MemoryStore):
    """Calls ``hook()`` once, when the ``nth`` write of an entry in ``state`` is made (a pending
    entry is written just before its request)."""

    def __init__(self, state: str, hook, nth: int = 1) -> None:
        super().__init__()
        self.state, self.hook, self.left = state, hook, nth

    def set(self, key: str, value: str) -> None:
        super().set(key, value)
        entries = decode_chunk(value, 0) if key.startswith(f"{HEAD_KEY}.c") else {}
        old = getattr(self, "_seen", {})
        fresh = [e for i, e in entries.items() if old.get(i) != e and e.state == self.state]
        self._seen = {**old, **entries}
        if self.hook and fresh:
            self.left -= 1
            if self.left == 0:
                hook, self.hook = self.hook, None
                hook()


class DyingClient(KwtSMSClient):
    max_in_flight = 1

    """Dies just before the request of batch ``die_at`` leaves."""

    die_at: int = -1

    def deliver(self, batch):
        if batch.index == self.die_at:
            raise Died(f"worker died before sending batch {batch.index}")
        return super().deliver(batch)


@pytest.fixture
def sandbox(kwtsms_sandbox_factory):
    # A 1 s same-number window (ERR028) instead of 15 s keeps resend cases fast.
    return kwtsms_sandbox_factory(balance=20_000, duplicate_window=1.0, clock=frozen_clock())


class OneAtATime(KwtSMSClient):
    """One request at a time, so a crash lands at a known batch. Several requests in flight (and
    the several pending batches a crash then leaves) are tests/test_in_flight.py's."""

    max_in_flight = 1


def client_for(sandbox, cls=OneAtATime) -> KwtSMSClient:
    # The sandbox's firewall is on: every client of a test shares one pacer at 5 a second, on
    # the sandbox's clock (a frozen one: waits cost no real time).
    client = cls("sandbox_user", "sandbox_pass", base_url=sandbox.url, **linked(sandbox))
    client.policy = replace(client.policy, same_number_wait=1.2)
    return client


def delivered(sandbox) -> Counter:
    return Counter(sandbox.delivery_counts())


def assert_each_once(sandbox, plan):
    counts = delivered(sandbox)
    expected = {n for batch in plan.batches for n in batch}
    assert set(counts) == expected, f"missing {len(expected - set(counts))}"
    assert max(counts.values()) == 1


def test_clean_send_records_every_batch_and_a_rerun_sends_nothing(sandbox):
    plan, store = make_plan(1000), MemoryStore()
    first = resume_send(client_for(sandbox), plan, store, try_number=1)
    assert [b.state for b in first.batches] == [SENT] * 5
    ledger = Ledger.load(store)
    assert [ledger.state(i) for i in range(5)] == [DONE] * 5
    sends_before = sum(1 for r in sandbox.requests() if r["endpoint"] == "send")

    again = resume_send(client_for(sandbox), plan, store, try_number=2)
    assert [b.state for b in again.batches] == [SKIPPED] * 5
    assert again.msg_ids == first.msg_ids  # earlier tries' msg-ids stay in the summary
    assert again.to_dict()["counts"]["sent"] == 1000
    assert sum(1 for r in sandbox.requests() if r["endpoint"] == "send") == sends_before
    assert_each_once(sandbox, plan)


def test_worker_dies_after_the_request_the_balance_shows_it_went_out(sandbox):
    plan = make_plan(1000)
    store = DyingStore(DONE, nth=3)  # batch 3 reached kwtSMS, its answer was never recorded
    with pytest.raises(Died):
        resume_send(client_for(sandbox), plan, store, try_number=1)
    assert Ledger.load(store).state(2) == PENDING
    assert len(sandbox.messages()) == 3

    result = resume_send(client_for(sandbox), plan, _copy(store), try_number=2)
    assert [b.state for b in result.batches] == [SKIPPED, SKIPPED, SKIPPED, SENT, SENT]
    assert result.batches[2].msg_id is None and result.batches[2].points_charged == 200
    assert_each_once(sandbox, plan)


def _copy(store: MemoryStore) -> MemoryStore:
    fresh = MemoryStore()
    fresh.data = dict(store.data)
    return fresh


def test_worker_dies_before_the_request_the_batch_is_sent_on_retry(sandbox):
    plan, store = make_plan(1000), MemoryStore()
    dying = client_for(sandbox, DyingClient)
    dying.die_at = 2
    with pytest.raises(Died):
        resume_send(dying, plan, store, try_number=1)
    assert Ledger.load(store).state(2) == PENDING  # recorded, but the request never left
    result = resume_send(client_for(sandbox), plan, store, try_number=2)
    assert [b.state for b in result.batches] == [SKIPPED, SKIPPED, SENT, SENT, SENT]
    assert_each_once(sandbox, plan)


def test_answer_lost_is_resolved_in_the_same_try(sandbox):
    plan = make_plan(200 * (BASELINE_MIN_BATCHES - 1))  # no read before the first batch
    # Batch 2's answer is lost; batch 1's answer said the balance before it.
    store = HookedStore(PENDING, lambda: sandbox.inject_fault("drop_after_accept", "send"), nth=2)
    result = resume_send(client_for(sandbox), plan, store, try_number=1)
    assert [b.state for b in result.batches] == [SENT] * len(plan.batches)
    assert result.batches[1].msg_id is None  # known only from the balance
    assert_each_once(sandbox, plan)
    # One balance read, made for the lost answer; every other figure came with a send's answer.
    assert [r["endpoint"] for r in sandbox.requests()].count("balance") == 1


def test_a_lost_first_answer_has_no_figure_to_judge_by_so_on_uncertain_decides(sandbox):
    # No balance is read before the first batch (it would cost a request per try): a lost first
    # answer cannot be judged, so the policy decides; with "resend" (at least once) it goes again.
    plan = make_plan(600)
    sandbox.inject_fault("drop_after_accept", "send", times=1)
    with pytest.raises(UncertainBatchesError) as info:
        resume_send(client_for(sandbox), plan, MemoryStore(), try_number=1)
    assert info.value.indices == [0]
    assert "balance" not in {r["endpoint"] for r in sandbox.requests()}  # nothing to compare it with
    assert len(sandbox.messages()) == 3  # the others went out


def test_a_large_sends_lost_first_answer_is_judged_by_a_balance_read_before_it(sandbox):
    # From BASELINE_MIN_BATCHES batches on, one balance read before the first request (at most 1
    # request in 11) gives the first batch a figure: its lost answer is judged like the others.
    plan = make_plan(200 * BASELINE_MIN_BATCHES)
    sandbox.inject_fault("drop_after_accept", "send", times=1)
    result = resume_send(client_for(sandbox), plan, MemoryStore(), try_number=1)
    assert [b.state for b in result.batches] == [SENT] * BASELINE_MIN_BATCHES
    assert result.batches[0].msg_id is None  # known only from the balance
    assert_each_once(sandbox, plan)
    # the baseline, then the read that judged the lost answer
    assert [r["endpoint"] for r in sandbox.requests()].count("balance") == 2


def test_a_lost_answer_is_judged_without_the_batch_that_waits_its_turn(sandbox):
    # Requests in flight: batch 1's answer is lost while batch 2 waits for its turn. Batch 2 must
    # not count as gone out (it was once recorded pending a whole interval ahead, and the balance,
    # down by one charge, matched neither "none" nor "both": the deployment's scenario d failed).
    plan = make_plan(200 * BASELINE_MIN_BATCHES)
    sandbox.inject_fault("drop_after_accept", "send", times=1)
    client = KwtSMSClient("sandbox_user", "sandbox_pass", base_url=sandbox.url, **linked(sandbox))
    assert client.max_in_flight > 1
    result = resume_send(client, plan, MemoryStore(), try_number=1)
    assert [b.state for b in result.batches] == [SENT] * len(plan.batches)
    assert result.batches[0].msg_id is None  # known only from the balance
    assert_each_once(sandbox, plan)


def test_a_batch_is_recorded_pending_just_before_its_turn_not_an_interval_ahead(sandbox, monkeypatch):
    # At 1 request a second with quick answers nothing is in flight while the next batch waits its
    # turn. It was recorded pending at once, a whole interval before its request: a worker killed
    # then left it pending beside the one that went, and the next try's balance could not tell the
    # two apart (the deployment's scenario d failed). Times on the sandbox's clock.
    from airflow_provider_kwtsms.ledger.journal import LedgerJournal
    from airflow_provider_kwtsms.send.batch_loop import MAX_RECORD_ALLOWANCE

    recorded: dict[int, float] = {}
    sending = LedgerJournal.sending

    def spy(self, index):
        recorded[index] = sandbox.now()
        return sending(self, index)

    monkeypatch.setattr(LedgerJournal, "sending", spy)
    vt = SandboxTime(sandbox)
    client = KwtSMSClient(
        "sandbox_user", "sandbox_pass", base_url=sandbox.url, rate=1, clock=vt.clock, sleep=vt.sleep,
        pacer=vt.pacer(1),
    )  # fmt: skip
    assert client.max_in_flight > 1
    plan = make_plan(800)
    resume_send(client, plan, MemoryStore(), try_number=1)
    starts = sorted(r["time"] for r in sandbox.requests() if r["endpoint"] == "send")
    assert len(starts) == len(recorded) == len(plan.batches)
    ahead = [start - recorded[i] for i, start in enumerate(starts)]
    assert all(0 <= a <= MAX_RECORD_ALLOWANCE + 0.05 for a in ahead), ahead


def test_answer_lost_and_account_unreachable_pending_is_resolved_next_try(sandbox):
    plan = make_plan(600)

    def faults():  # just before the second request: its answer is lost, then the account is unreachable
        sandbox.inject_fault("drop_after_accept", "send", times=1)
        sandbox.inject_fault("http_503", "balance", times=20)  # more than the client's retries

    store = HookedStore(PENDING, faults, nth=2)
    client = client_for(sandbox)
    client.policy = replace(client.policy, max_retries=1, backoff_base=0.01)
    with pytest.raises(Exception) as info:
        resume_send(client, plan, store, try_number=1)
    assert not getattr(info.value, "permanent", False)  # a retry can fix it
    sandbox.clear_faults()
    result = resume_send(client_for(sandbox), plan, store, try_number=2)
    assert [b.state for b in result.batches] == [SKIPPED, SKIPPED, SENT]
    assert_each_once(sandbox, plan)


def test_connection_refused_before_processing_fails_the_try_and_the_retry_sends_it(sandbox):
    plan = make_plan(600)
    # From the second request on (the first answer brings the balance figure the others are judged by).
    store = HookedStore(PENDING, lambda: sandbox.inject_fault("drop_before", "send", times=50), nth=2)
    client = client_for(sandbox)
    client.policy = replace(client.policy, max_retries=1, backoff_base=0.01)
    with pytest.raises(Exception) as info:
        resume_send(client, plan, store, try_number=1)
    assert not getattr(info.value, "permanent", True)
    sandbox.clear_faults()
    result = resume_send(client_for(sandbox), plan, store, try_number=2)
    assert [b.state for b in result.batches] == [SKIPPED, SENT, SENT]
    assert_each_once(sandbox, plan)


@pytest.mark.parametrize("policy", ["skip", "resend", "fail"])
def test_unresolvable_pending_follows_on_uncertain(sandbox, policy):
    plan = make_plan(1000)
    store = DyingStore(DONE, nth=2)  # batch 2 went out, answer not recorded
    with pytest.raises(Died):
        resume_send(client_for(sandbox), plan, store, try_number=1)
    # Meanwhile something else spends on the account: the balance can no longer tell.
    other = client_for(sandbox)
    other.send_batch(["96599999999"], "someone else", sender="KWT-SMS", test=False)
    store = _copy(store)
    if policy == "fail":
        with pytest.raises(UncertainBatchesError) as info:
            resume_send(client_for(sandbox), plan, store, on_uncertain=policy, try_number=2)
        assert info.value.indices == [1] and info.value.permanent
        assert "on_uncertain='skip'" in info.value.action
        # A person checked: it went out. Clearing with 'skip' finishes without sending it again.
        result = resume_send(client_for(sandbox), plan, store, on_uncertain="skip", try_number=3)
    else:
        result = resume_send(client_for(sandbox), plan, store, on_uncertain=policy, try_number=2)
    counts = delivered(sandbox)
    batch2 = plan.batches[1]
    assert all(counts[n] == (2 if policy == "resend" else 1) for n in batch2)
    others = [n for i, b in enumerate(plan.batches) if i != 1 for n in b]
    assert all(counts[n] == 1 for n in others)
    if policy != "resend":
        assert result.batches[1].state == UNCERTAIN
        assert result.to_dict()["counts"]["uncertain"] == 200


def test_permanent_error_mid_send_then_top_up_resumes(sandbox):
    plan, store = make_plan(1000), MemoryStore()
    sandbox.set_balance(450)  # enough for two batches
    with pytest.raises(Exception) as info:
        resume_send(client_for(sandbox), plan, store, try_number=1)
    assert info.value.code in ("ERR010", "ERR011") and info.value.permanent
    sandbox.set_balance(5000)
    result = resume_send(client_for(sandbox), plan, store, try_number=2)
    assert [b.state for b in result.batches] == [SKIPPED, SKIPPED, SENT, SENT, SENT]
    assert_each_once(sandbox, plan)


def test_changed_message_after_a_partial_send_is_refused(sandbox):
    store = DyingStore(DONE, nth=2)
    with pytest.raises(Died):
        resume_send(client_for(sandbox), make_plan(1000, "first text"), store, try_number=1)
    with pytest.raises(LedgerMismatchError) as info:
        resume_send(client_for(sandbox), make_plan(1000, "second text"), _copy(store), try_number=2)
    assert "message text" in str(info.value) and info.value.permanent
    with pytest.raises(LedgerMismatchError) as info:
        resume_send(client_for(sandbox), make_plan(1000, "first text", start=5), _copy(store), try_number=2)
    assert "recipients" in str(info.value)


def test_changed_send_starts_afresh_when_the_earlier_one_was_a_test(sandbox):
    store = DyingStore(DONE, nth=2)
    with pytest.raises(Died):
        resume_send(client_for(sandbox), make_plan(400, test=True), store, try_number=1)
    live = make_plan(400, test=False)
    result = resume_send(client_for(sandbox), live, _copy(store), try_number=2)
    assert [b.state for b in result.batches] == [SENT, SENT]
    live_counts = Counter(m for msg in sandbox.messages() if not msg["test"] for m in msg["mobile"])
    assert len(live_counts) == 400 and max(live_counts.values()) == 1


def test_fingerprint_covers_sender_text_numbers_and_test_flag():
    base = fingerprint(make_plan(300))
    assert base == fingerprint(make_plan(300))
    assert base.digest != fingerprint(make_plan(300, "other")).digest
    assert base.digest != fingerprint(make_plan(300, test=True)).digest
    assert base.digest != fingerprint(make_plan(301)).digest
    plan = make_plan(300)
    plan.sender = "MY-APP"
    assert fingerprint(plan).differences(base.parts()) == ["sender ID"]


def test_ledger_of_a_million_recipients_stays_small():
    store = MemoryStore()
    batches = 5000
    ledger = Ledger.create(store, fingerprint(make_plan(10)), batches, 1)
    for i in range(batches):
        entry = Entry(DONE, 1, "5c2afd345b074e918818247e568ea748", 200, 1e6 - 200 * i, 1795317478)
        ledger.record(i, entry)
    sizes = [len(v) for v in store.data.values()]
    assert len(store.data) == 1 + batches // CHUNK_SIZE
    assert max(sizes) < 65535  # the task state store's default per-value limit
    reloaded = Ledger.load(store)
    assert reloaded.state(4999) == DONE and reloaded.entries[1234].balance_after == 1e6 - 200 * 1234
    print(f"ledger for 5000 batches: {sum(sizes)} bytes in {len(sizes)} values, largest {max(sizes)}")


def test_balance_judgement():
    assert judge_by_balance(1000, 800, 200) == "sent"
    assert judge_by_balance(1000, 1000, 200) == "not_sent"
    assert judge_by_balance(1000, 790, 200) is None  # something else spent
    assert judge_by_balance(1000, 1000, 0) is None  # a free (test) send cannot be told
    assert judge_by_balance(None, 800, 200) is None
    # Two answers lost at once (200 each): all or nothing can be told, not one of the two.
    assert judge_by_balance(1000, 600, 200, others=200) == "sent"
    assert judge_by_balance(1000, 1000, 200, others=200) == "not_sent"
    assert judge_by_balance(1000, 800, 200, others=200) is None


def test_the_balance_before_a_batch_counts_the_answers_that_came_after_its_figure(sandbox):
    # With requests in flight, a batch's recorded figure may predate answers that spent after it:
    # a batch answered with a lower balance spent after the figure, and is subtracted.
    from airflow_provider_kwtsms.ledger.journal import LedgerJournal

    plan, store = make_plan(600), MemoryStore()
    ledger = Ledger.create(store, fingerprint(plan), 3, 1)
    ledger.record(0, Entry(DONE, 1, "a" * 32, 200, 9800.0))
    ledger.record(1, Entry(PENDING, 1, balance_before=9800.0, charge=200))  # figure from batch 1
    ledger.record(2, Entry(DONE, 1, "b" * 32, 200, 9600.0))  # started later, answered first
    journal = LedgerJournal(client_for(sandbox), plan, ledger, on_uncertain="fail", try_number=1)
    assert journal.before(ledger.entries[1]) == 9600.0
    assert judge_by_balance(journal.before(ledger.entries[1]), 9400.0, 200) == "sent"
    assert judge_by_balance(journal.before(ledger.entries[1]), 9600.0, 200) == "not_sent"


def test_a_closing_send_window_pauses_at_a_batch_boundary_and_the_next_opening_finishes(sandbox):
    # The window is a question asked before each batch; here it closes after two batches.
    from airflow_provider_kwtsms.ledger.resume import SendPaused

    plan, store = make_plan(1000), MemoryStore()
    answers = iter([True, True, False])
    with pytest.raises(SendPaused) as paused:
        resume_send(client_for(sandbox), plan, store, try_number=1, keep_going=lambda: next(answers))
    states = [(b.state, b.error_code) for b in paused.value.result.batches]
    assert states == [(SENT, None)] * 2 + [(FAILED, "PAUSED")] * 3
    assert sum(1 for r in sandbox.requests() if r["endpoint"] == "send") == 2
    # The window opens again (same try: a deferred task resumes in its try): the rest go, once.
    result = resume_send(client_for(sandbox), plan, store, try_number=1, keep_going=lambda: True)
    assert [b.state for b in result.batches] == [SKIPPED] * 2 + [SENT] * 3
    assert_each_once(sandbox, plan)


def test_a_completed_ledger_keeps_one_value_and_a_retry_sends_nothing(sandbox):
    """What the operator does on Airflow 3.0 to 3.2 after success (Variables): the ledger shrinks
    to its head marked complete; a retry (the task failed after execute) sends nothing again."""
    from airflow_provider_kwtsms.ledger.resume import complete_ledger

    plan = make_plan(1000)
    store = MemoryStore()
    resume_send(client_for(sandbox), plan, store, try_number=1)
    complete_ledger(store)
    assert list(store.data) == [HEAD_KEY]
    sends = sum(1 for r in sandbox.requests() if r["endpoint"] == "send")
    again = resume_send(client_for(sandbox), plan, store, try_number=2)
    assert [b.state for b in again.batches] == [SKIPPED] * 5
    assert sum(1 for r in sandbox.requests() if r["endpoint"] == "send") == sends
    assert_each_once(sandbox, plan)


def test_a_ledger_with_a_batch_not_sent_is_not_marked_complete(sandbox):
    from airflow_provider_kwtsms.ledger.resume import complete_ledger

    plan = make_plan(400)
    store = MemoryStore()
    sandbox.inject_fault("drop_after_accept", "send")  # batch 1 unresolved (no balance figure)
    with pytest.raises(UncertainBatchesError):
        resume_send(client_for(sandbox), plan, store, try_number=1)
    complete_ledger(store)
    assert f"{HEAD_KEY}.c0" in store.data and '"c":true' not in store.data[HEAD_KEY]
