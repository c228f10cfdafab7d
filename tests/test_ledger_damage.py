"""A damaged stored ledger (no Airflow): one clear error naming the key, and nothing resent.

Each case writes the ledger a real send leaves (the head, then a chunk per 100 batches, as the
journal records them), damages one value, and resumes the send through ``resume_send`` against
the sandbox over loopback: the try must raise ``LedgerDamagedError`` naming the damaged key and
what is wrong, send no request, and leave the store as it found it (for a person to inspect).
"""

from __future__ import annotations

import json
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import pytest
from sandbox_helpers import frozen_clock, linked

from airflow_provider_kwtsms.gateway.client import MAX_BATCH, KwtSMSClient
from airflow_provider_kwtsms.ledger.codec import (
    MAX_BATCH_POINTS,
    MAX_LEDGER_BATCHES,
    BatchState,
    chunk_key,
    decode_chunk,
    encode_chunk,
)
from airflow_provider_kwtsms.ledger.resume import (
    HEAD_KEY,
    Entry,
    Ledger,
    LedgerDamagedError,
    LedgerMismatchError,
    MemoryStore,
    fingerprint,
    resume_send,
)
from airflow_provider_kwtsms.send.results import SENT, SKIPPED, SendPlan
from airflow_provider_kwtsms.text.message import measure_message

DONE = BatchState.DONE

C0, C1 = chunk_key(0), chunk_key(1)
SMALL, BIG = 5, 150  # batches: one chunk (3 recorded), or two chunks (120 recorded)


def make_plan(batches: int, message: str = "Damage test", *, test: bool = False) -> SendPlan:
    numbers = [f"9656{i:07d}" for i in range(batches * MAX_BATCH)]
    recipients = types.SimpleNamespace(valid=numbers, invalid=[], duplicates=[], total_inputs=len(numbers))
    return SendPlan(
        recipients=recipients,
        message=message,
        info=measure_message(message),
        sender="KWT-SMS",
        test=test,
        batches=[numbers[i : i + MAX_BATCH] for i in range(0, len(numbers), MAX_BATCH)],
        estimate=len(numbers) * measure_message(message).pages,
    )


def recorded_ledger(plan: SendPlan, done: int) -> MemoryStore:
    """The store a try leaves after sending batches 0..done-1 (entries as the journal writes them)."""
    store = MemoryStore()
    ledger = Ledger.create(store, fingerprint(plan), len(plan.batches), 1)
    for i in range(done):
        entry = Entry(DONE, 1, f"{i:032x}", 200, 1_000_000.0 - 200 * (i + 1), 1_767_225_600 + i)
        ledger.record(i, entry)
    return store


@pytest.fixture
def sandbox(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(balance=1_000_000, duplicate_window=1.0, clock=frozen_clock())


def client_for(sandbox) -> KwtSMSClient:
    client = KwtSMSClient("sandbox_user", "sandbox_pass", base_url=sandbox.url, **linked(sandbox))
    client.policy = replace(client.policy, same_number_wait=1.2)
    return client


def sends(sandbox) -> int:
    return sum(1 for r in sandbox.requests() if r["endpoint"] == "send")


# -- the damages --------------------------------------------------------------------------------
def head(**changes) -> Callable[[dict[str, str]], None]:
    def damage(data: dict[str, str]) -> None:
        raw = json.loads(data[HEAD_KEY])
        for key, value in changes.items():
            if key == "test":
                raw["parts"]["test"] = value
            else:
                raw[key] = value
        data[HEAD_KEY] = json.dumps(raw)

    return damage


def chunk(text: str | None, key: str = C0) -> Callable[[dict[str, str]], None]:
    def damage(data: dict[str, str]) -> None:
        if text is None:
            del data[key]
        else:
            data[key] = text

    return damage


def entry(field: str, value: object, *, raw: str | None = None) -> Callable[[dict[str, str]], None]:
    """Batch 2's entry (offset "1" of c0) with ``field`` set to ``value`` (or its raw JSON text)."""

    def damage(data: dict[str, str]) -> None:
        stored = json.loads(data[C0])
        if field == "":
            stored["1"] = value
        else:
            stored["1"][field] = "@@" if raw is not None else value
        data[C0] = json.dumps(stored).replace('"@@"', raw or "")

    return damage


def shift_keys(data: dict[str, str]) -> None:
    """Every offset one too high: "1".."n" instead of "0".."n-1"."""
    stored = json.loads(data[C0])
    data[C0] = json.dumps({str(int(k) + 1): v for k, v in stored.items()})


def truncate(key: str) -> Callable[[dict[str, str]], None]:
    def damage(data: dict[str, str]) -> None:
        data[key] = data[key][: len(data[key]) // 2]

    return damage


def extra_offset(offset: str) -> Callable[[dict[str, str]], None]:
    def damage(data: dict[str, str]) -> None:
        stored = json.loads(data[C0])
        stored[offset] = {"s": "d", "t": 1}
        data[C0] = json.dumps(stored)

    return damage


def copy_chunk(source: str, target: str) -> Callable[[dict[str, str]], None]:
    def damage(data: dict[str, str]) -> None:
        data[target] = data[source]

    return damage


# (batches in the plan, damage, the key the error must name, a phrase saying what is wrong)
DAMAGES = {
    # the head
    "head count 0": (SMALL, head(n=0), HEAD_KEY, "counts 0 batches"),
    "head count -5": (SMALL, head(n=-5), HEAD_KEY, "batch count 'n' -5"),
    "head count 10^12": (SMALL, head(n=10**12), HEAD_KEY, "counts 1000000000000 batches"),
    "head count as text": (SMALL, head(n="5"), HEAD_KEY, "batch count 'n' '5'"),
    "head count 6 of 5": (SMALL, head(n=6), HEAD_KEY, "has 5"),
    "chunk size -1": (SMALL, head(k=-1), HEAD_KEY, "chunk size 'k' -1"),
    "chunk size 0": (SMALL, head(k=0), HEAD_KEY, "chunk size 'k' 0"),
    "chunk size 50": (BIG, head(k=50), HEAD_KEY, "chunk size 'k' 50"),
    "head truncated": (SMALL, truncate(HEAD_KEY), HEAD_KEY, "not valid JSON"),
    "head a list": (SMALL, chunk("[1, 2]", HEAD_KEY), HEAD_KEY, "a list"),
    "head null": (SMALL, chunk("null", HEAD_KEY), HEAD_KEY, "null"),
    "head version as text": (SMALL, head(v="1"), HEAD_KEY, "version 'v' '1'"),
    "fingerprint altered": (SMALL, head(fp="0" * 16), HEAD_KEY, "does not match its parts"),
    "test flag flipped": (SMALL, head(test=True), HEAD_KEY, "does not match its parts"),
    "parts missing": (SMALL, head(parts=None), HEAD_KEY, "'parts' null"),
    "first try as text": (SMALL, head(t0="1"), HEAD_KEY, "'t0' '1'"),
    # a chunk
    "chunk 0 missing, chunk 1 stored": (BIG, chunk(None), C0, "is missing"),
    "the only chunk missing": (SMALL, chunk(None), C0, "the head says chunks up to"),
    "head missing, chunks stored": (SMALL, chunk(None, HEAD_KEY), HEAD_KEY, "is missing while"),
    "chunk 0 empty": (SMALL, chunk("{}"), C0, "no entry for its first batch"),
    "chunk 0 null": (SMALL, chunk("null"), C0, "is null"),
    "chunk 0 a list": (SMALL, chunk("[]"), C0, "a list"),
    "chunk 0 truncated": (SMALL, truncate(C0), C0, "not valid JSON"),
    "keys shifted by one": (SMALL, shift_keys, C0, "no entry for its first batch"),
    "keys shifted, full chunk": (BIG, shift_keys, C0, "key '100'"),
    "offset beyond the plan": (SMALL, extra_offset("7"), C0, "batch 8 (key '7'); the send has 5"),
    "offset not canonical": (SMALL, extra_offset("01"), C0, "key '01'"),
    "offset negative": (SMALL, extra_offset("-1"), C0, "key '-1'"),
    "chunk past the last": (SMALL, copy_chunk(C0, C1), C1, "head counts 5 batches"),
    # an entry
    "entry null": (SMALL, entry("", None), C0, "batch 2 (key '1') that is null"),
    "entry a list": (SMALL, entry("", [1]), C0, "a list"),
    "state unknown": (SMALL, entry("s", "x"), C0, "state 's' 'x'"),
    "state missing": (SMALL, entry("", {"t": 1}), C0, "no state 's'"),
    "points as text": (SMALL, entry("p", "200"), C0, "points 'p' '200'"),
    "points negative": (SMALL, entry("p", -1), C0, "points 'p' -1"),
    "points 1e300": (SMALL, entry("p", 1e300), C0, "points 'p' 1e+300"),
    "points NaN": (SMALL, entry("p", None, raw="NaN"), C0, "NaN is not a JSON number"),
    "points true": (SMALL, entry("p", True), C0, "points 'p' true"),
    "points too many": (SMALL, entry("p", MAX_BATCH_POINTS + 1), C0, "points 'p' 1000001"),
    "try number as text": (SMALL, entry("t", "1"), C0, "try_number 't' '1'"),
    "try number 1.5": (SMALL, entry("t", 1.5), C0, "try_number 't' 1.5"),
    "msg-id too long": (SMALL, entry("m", "a" * 101), C0, "msg_id 'm'"),
    "msg-id a number": (SMALL, entry("m", 123), C0, "msg_id 'm' 123"),
    "balance as text": (SMALL, entry("b", "x"), C0, "balance_after 'b' 'x'"),
    "balance 1e300": (SMALL, entry("b", 1e300), C0, "balance_after 'b' 1e+300"),
    "balance Infinity": (SMALL, entry("bb", None, raw="Infinity"), C0, "Infinity is not a JSON number"),
    "timestamp 1.5": (SMALL, entry("ts", 1.5), C0, "timestamp 'ts' 1.5"),
    "error code too long": (SMALL, entry("e", "E" * 41), C0, "error_code 'e'"),
    "charge negative": (SMALL, entry("c", -200), C0, "charge 'c' -200"),
}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_a_damaged_ledger_raises_one_clear_error_and_sends_nothing(sandbox, case):
    batches, damage, key, what = DAMAGES[case]
    plan = make_plan(batches)
    store = recorded_ledger(plan, done=3 if batches == SMALL else 120)
    damage(store.data)
    before = ledger_keys(store)

    with pytest.raises(LedgerDamagedError) as info:
        resume_send(client_for(sandbox), plan, store, try_number=2)

    err = info.value
    text = str(err)
    assert err.code == "LEDGER_DAMAGED" and err.key == key
    assert err.permanent and not err.retryable
    assert f"{key!r} " in text and what in text, text
    assert "Check the messages" in err.action and HEAD_KEY in err.action
    assert sends(sandbox) == 0 and sandbox.messages() == []  # nothing resent
    # The ledger's keys are left as found, for a person to check (the fence's owner and yield
    # records are the try's own, written around any send)
    assert ledger_keys(store) == before


def test_a_damaged_ledger_of_an_earlier_different_send_is_damage_not_a_fresh_start(sandbox):
    # An earlier test send (a changed send the ledger would start afresh) whose chunk is damaged:
    # it can no longer tell what it sent, so nothing starts afresh.
    store = recorded_ledger(make_plan(SMALL, test=True), done=3)
    store.data[C0] = "null"
    with pytest.raises(LedgerDamagedError) as info:
        resume_send(client_for(sandbox), make_plan(SMALL), store, try_number=2)
    assert info.value.key == C0 and sends(sandbox) == 0


def test_the_error_names_the_keys_to_restore_or_delete():
    plan = make_plan(BIG)
    store = recorded_ledger(plan, done=120)
    store.data[C1] = "null"
    with pytest.raises(LedgerDamagedError) as info:
        Ledger.load(store, expected_batches=BIG, expected_digest=fingerprint(plan).digest)
    assert f"'{HEAD_KEY}' and '{C0}' to '{C1}'" in info.value.action


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: str) -> str | None:
        from airflow_provider_kwtsms.ledger.fence import OWNER_KEY

        self.gets += key != OWNER_KEY  # the ledger's reads, not the fence's claim
        return super().get(key)


@pytest.mark.parametrize("same_send", [True, False], ids=["this send", "another send"])
def test_a_head_counting_10_to_the_12_batches_is_refused_without_a_loop(sandbox, same_send):
    plan = make_plan(SMALL)
    store = CountingStore()
    store.data = recorded_ledger(plan if same_send else make_plan(SMALL, "other"), done=3).data
    head(n=10**12)(store.data)
    with pytest.raises(LedgerDamagedError) as info:
        resume_send(client_for(sandbox), plan, store, try_number=2)
    assert info.value.key == HEAD_KEY and "1000000000000" in str(info.value)
    assert store.gets == 1  # the head only: no chunk read, let alone 10^10 of them
    assert sends(sandbox) == 0


def test_loading_reads_the_plans_chunks_and_one_more():
    plan = make_plan(BIG)
    store = CountingStore()
    store.data = recorded_ledger(plan, done=120).data
    ledger = Ledger.load(store, expected_batches=BIG, expected_digest=fingerprint(plan).digest)
    assert ledger is not None and len(ledger.entries) == 120
    assert store.gets == 1 + 2 + 1  # the head, c0 and c1, and c2 (must not exist)


def test_another_sends_ledger_is_read_up_to_the_bound():
    other = make_plan(SMALL, "other")
    store = CountingStore()
    store.data = recorded_ledger(other, done=3).data
    head(n=MAX_LEDGER_BATCHES + 1)(store.data)
    with pytest.raises(LedgerDamagedError):
        Ledger.load(store, expected_batches=SMALL, expected_digest=fingerprint(make_plan(SMALL)).digest)
    assert store.gets == 1


# -- what is not damage ---------------------------------------------------------------------------
def test_chunks_not_written_yet_are_normal_and_the_send_resumes(sandbox):
    plan = make_plan(102)  # c0 full, c1 not written yet (the try died before batch 101)
    store = recorded_ledger(plan, done=100)
    assert C1 not in store.data
    result = resume_send(client_for(sandbox), plan, store, try_number=2)
    assert [b.state for b in result.batches] == [SKIPPED] * 100 + [SENT, SENT]
    counts = Counter(sandbox.delivery_counts())
    assert len(counts) == 400 and max(counts.values()) == 1


def test_unknown_keys_are_ignored_so_a_newer_writers_ledger_still_resumes(sandbox):
    # Version 1 gained fields before without a new version: a reader ignores what it does not know.
    plan = make_plan(SMALL)
    store = recorded_ledger(plan, done=3)
    raw = json.loads(store.data[HEAD_KEY])
    raw["owner"] = {"try": 1, "token": "abc"}
    raw["parts"]["layout"] = "x"
    store.data[HEAD_KEY] = json.dumps(raw)
    stored = json.loads(store.data[C0])
    stored["0"]["zz"] = [1, 2]
    store.data[C0] = json.dumps(stored)
    result = resume_send(client_for(sandbox), plan, store, try_number=2)
    assert [b.state for b in result.batches] == [SKIPPED] * 3 + [SENT] * 2
    assert sends(sandbox) == 2


def test_another_version_is_still_a_mismatch_not_damage(sandbox):
    plan = make_plan(SMALL)
    store = recorded_ledger(plan, done=3)
    head(v=2)(store.data)
    with pytest.raises(LedgerMismatchError) as info:
        resume_send(client_for(sandbox), plan, store, try_number=2)
    assert type(info.value) is LedgerMismatchError and "version 2" in str(info.value)
    assert sends(sandbox) == 0


def test_every_field_at_its_limits_round_trips():
    limits = Entry(
        BatchState.UNRESOLVED,
        try_number=0,
        msg_id="a" * 100,
        points=MAX_BATCH_POINTS,
        balance_after=-1e12,
        timestamp=0,
        balance_before=1e12,
        charge=0,
        error_code="E" * 40,
    )
    for state in BatchState:
        entries = {7: replace(limits, state=state), 8: Entry(state)}
        assert decode_chunk(encode_chunk(entries, 0), 0) == entries


def test_any_corruption_of_a_stored_value_loads_or_raises_our_error_never_a_raw_one():
    # Seeded random damage (a character replaced, dropped or doubled, or the value cut): whatever
    # it gives, loading ends in a ledger or a LedgerMismatchError (damaged, another version).
    import random

    rng = random.Random(21)
    plan = make_plan(BIG)
    pristine = recorded_ledger(plan, done=120).data
    outcomes: Counter[str] = Counter()
    for _ in range(600):
        store = CountingStore()
        store.data = dict(pristine)
        key = rng.choice([HEAD_KEY, C0, C1])
        text = store.data[key]
        at = rng.randrange(len(text))
        kind = rng.choice(["replace", "drop", "double", "cut"])
        char = rng.choice('0123456789-.eE"{}[],:nulltrfasNI ')
        store.data[key] = {
            "replace": text[:at] + char + text[at + 1 :],
            "drop": text[:at] + text[at + 1 :],
            "double": text[:at] + text[at] + text[at:],
            "cut": text[:at],
        }[kind]
        try:
            Ledger.load(store, expected_batches=BIG, expected_digest=fingerprint(plan).digest)
            outcomes["loaded"] += 1
        except LedgerMismatchError as exc:
            outcomes[exc.code] += 1
        assert store.gets <= 1 + 2 + 1  # bounded by the plan whatever the damage
    print(f"600 random corruptions: {dict(outcomes)}")
    assert outcomes["LEDGER_DAMAGED"] > 300, outcomes


def ledger_keys(store) -> dict[str, str]:
    from airflow_provider_kwtsms.ledger.fence import OWNER_KEY, YIELD_PREFIX

    return {k: v for k, v in store.data.items() if k != OWNER_KEY and not k.startswith(YIELD_PREFIX)}
