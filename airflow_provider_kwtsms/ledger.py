"""The send ledger: a bulk send that resumes across retries, never twice and never lost.

kwtSMS has no idempotency key, so a retried bulk send would message every earlier batch again.
The ledger records each batch *before* its request (pending) and *after* it (done, with its
msg-id), in a key-value store that outlives the process (Airflow's task state store or a
Variable; see ``operators/_ledger_store.py``). On the next try:

- done batches are skipped (their msg-ids still appear in the result);
- batches that certainly did not go out (failed, or never started) are sent;
- a pending batch (request sent, answer lost) is resolved from the account: the balance now is
  compared with the balance recorded before its request. Unchanged: not sent, send it. Lower by
  exactly the batch's charge: sent, skip it. Anything else (someone else spent, a top-up): the
  outcome cannot be known and ``on_uncertain`` decides: ``"skip"`` (at most once), ``"resend"``
  (at least once) or ``"fail"`` (stop and let a person decide).

The ledger stores batch states, not numbers: the numbers are re-derived from the plan, which is
why the ledger carries a fingerprint of the plan (sender, text, test flag, the batches' numbers).
A changed plan is never mistaken for the same send.

No Airflow import here: the ledger works from any Python program with any store.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_kwtsms.constants import DEFAULT_ON_UNCERTAIN, ON_UNCERTAIN
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSNetworkError

if TYPE_CHECKING:
    from airflow_provider_kwtsms.results import BatchResult, SendPlan, SendResult

log = logging.getLogger(__name__)

LEDGER_VERSION = 1
HEAD_KEY = "kwtsms_ledger"
# Batches per stored chunk: a million recipients (5,000 batches) is 50 values of a few KB each,
# well under the task state store's 64 KB per-value limit.
CHUNK_SIZE = 100
# In one try, a batch found "not sent" after a lost answer is sent again at most this often
# before the try gives up and leaves it to the next Airflow retry.
MAX_RESENDS_IN_TRY = 2

# Batch entry states, one letter each to keep the stored ledger small.
PENDING = "p"  # written just before the request: the request may or may not have reached kwtSMS
DONE = "d"  # the gateway answered OK (msg-id known)
INFERRED = "i"  # answer lost; the balance shows it was charged, so it went out (no msg-id)
FAILED = "f"  # certainly not sent (error answer, connection refused, 5xx before processing)
SKIPPED_UNCERTAIN = "s"  # outcome unknown; on_uncertain="skip" chose not to send it again
UNRESOLVED = "u"  # outcome unknown; on_uncertain="fail" stopped on it; a later try decides again

_SENT_STATES = (DONE, INFERRED)


class KeyValueStore(Protocol):
    """Where the ledger lives: string keys to string values, surviving the process."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryStore:
    """A dict-backed store: for plain Python programs within one process, and for tests."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class LedgerMismatchError(KwtSMSError):
    """An earlier try sent (part of) a different send under this task instance."""

    def __init__(self, description: str, *, action: str) -> None:
        super().__init__("LEDGER_MISMATCH", description, action=action)
        self.permanent = True
        self.retryable = False


class UncertainBatchesError(KwtSMSError):
    """Some batches may or may not have gone out, and on_uncertain="fail" asked a person to decide."""

    def __init__(
        self, indices: list[int], total: int, numbers: int, result: SendResult | None = None
    ) -> None:
        shown = ", ".join(str(i + 1) for i in indices[:20]) + (" …" if len(indices) > 20 else "")
        super().__init__(
            "UNCERTAIN",
            f"{len(indices)} of {total} batches ({numbers} numbers; batch {shown}) may or may not have been "
            "sent: the request reached kwtSMS but its answer was lost, and the account balance could "
            "not tell (something else spent or topped up meanwhile).",
            action="Check the messages in your kwtSMS account, then clear this task with "
            "on_uncertain='skip' (if they went out) or on_uncertain='resend' (if they did not); "
            "the batches already sent are remembered and will not be sent again.",
        )
        self.permanent = True
        self.retryable = False
        self.indices = indices
        self.result = result


class BatchNotSentError(KwtSMSError):
    """A batch certainly did not go out for a passing reason: a retry will send it (and only it)."""

    def __init__(self, index: int, total: int, code: str, description: str | None) -> None:
        super().__init__(
            code,
            f"batch {index + 1}/{total} was not sent: {description or code}",
            action="Retry: the batches already sent are remembered and will not be sent again.",
        )
        self.permanent = False
        self.retryable = True
        self.index = index


# -- fingerprint ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fingerprint:
    """What makes two sends the same send. Stored as short hashes: no numbers, no text."""

    digest: str
    sender: str
    message: str
    recipients: str
    test: bool

    def parts(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "message": self.message,
            "recipients": self.recipients,
            "test": self.test,
        }

    def differences(self, stored: dict[str, Any]) -> list[str]:
        names = {
            "sender": "sender ID",
            "message": "message text",
            "recipients": "recipients or their order",
            "test": "test mode",
        }
        return [label for key, label in names.items() if stored.get(key) != self.parts()[key]]


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(plan: SendPlan) -> Fingerprint:
    """The plan's identity: sender, cleaned text, test flag and the batches' numbers in order.

    The batch layout is part of it, so a change of batch size cannot shift numbers between the
    stored batch states.
    """
    sender = _h(plan.sender)
    message = _h(plan.message)
    recipients = _h("|".join(",".join(batch) for batch in plan.batches))
    digest = _h(json.dumps([sender, message, recipients, bool(plan.test)]))
    return Fingerprint(digest, sender, message, recipients, bool(plan.test))


# -- the stored ledger ------------------------------------------------------------------------
class Ledger:
    """Batch states of one send in a store: a head (fingerprint, batch count) and chunks of entries.

    An entry is a small dict: ``s`` state; ``t`` try; ``m`` msg-id; ``p`` points charged;
    ``b`` balance after; ``ts`` server timestamp; ``bb`` balance before the request and ``c``
    expected charge (the evidence for resolving a lost answer); ``e`` error code.
    """

    def __init__(self, store: KeyValueStore, head: dict[str, Any], entries: dict[int, dict[str, Any]]):
        self.store = store
        self.head = head
        self.entries = entries

    @property
    def batches(self) -> int:
        return int(self.head["n"])

    @staticmethod
    def chunk_key(chunk: int) -> str:
        return f"{HEAD_KEY}.c{chunk}"

    @classmethod
    def load(cls, store: KeyValueStore) -> Ledger | None:
        raw = store.get(HEAD_KEY)
        if raw is None:
            return None
        head = json.loads(raw)
        if head.get("v") != LEDGER_VERSION:
            raise LedgerMismatchError(
                f"The stored send ledger has version {head.get('v')!r}; this provider reads version "
                f"{LEDGER_VERSION}.",
                action="Finish the send with the provider version that started it, or delete the ledger.",
            )
        entries: dict[int, dict[str, Any]] = {}
        chunk_size = int(head.get("k", CHUNK_SIZE))
        for chunk in range(-(-int(head["n"]) // chunk_size)):
            raw_chunk = store.get(cls.chunk_key(chunk))
            if raw_chunk is None:
                continue
            for offset, entry in json.loads(raw_chunk).items():
                entries[chunk * chunk_size + int(offset)] = entry
        return cls(store, head, entries)

    @classmethod
    def create(cls, store: KeyValueStore, fp: Fingerprint, batches: int, try_number: int | None) -> Ledger:
        head = {
            "v": LEDGER_VERSION,
            "fp": fp.digest,
            "parts": fp.parts(),
            "n": batches,
            "k": CHUNK_SIZE,
            "t0": try_number,
        }
        store.set(HEAD_KEY, json.dumps(head, separators=(",", ":")))
        return cls(store, head, {})

    def record(self, index: int, **entry: Any) -> None:
        """Write one batch's entry (and so its chunk) through to the store."""
        self.entries[index] = {k: v for k, v in entry.items() if v is not None}
        chunk_size = int(self.head.get("k", CHUNK_SIZE))
        chunk = index // chunk_size
        first = chunk * chunk_size
        stored = {
            str(i - first): self.entries[i]
            for i in range(first, min(first + chunk_size, self.batches))
            if i in self.entries
        }
        self.store.set(self.chunk_key(chunk), json.dumps(stored, separators=(",", ":")))

    def state(self, index: int) -> str | None:
        entry = self.entries.get(index)
        return entry.get("s") if entry else None

    def anything_sent(self) -> bool:
        """True when some batch went out or may have: a fresh start could send it twice."""
        return any(
            e.get("s") in (*_SENT_STATES, PENDING, SKIPPED_UNCERTAIN, UNRESOLVED)
            for e in self.entries.values()
        )

    def delete(self) -> None:
        chunk_size = int(self.head.get("k", CHUNK_SIZE))
        for chunk in range(-(-self.batches // chunk_size)):
            self.store.delete(self.chunk_key(chunk))
        self.store.delete(HEAD_KEY)


def delete_ledger(store: KeyValueStore) -> None:
    """Remove a send's ledger (after success, or to start a changed send deliberately)."""
    ledger = Ledger.load(store)
    if ledger is not None:
        ledger.delete()


# -- resume -----------------------------------------------------------------------------------
def _same(a: float, b: float) -> bool:
    return abs(a - b) < 1e-6


def judge_by_balance(before: float | None, now: float | None, charge: int) -> str | None:
    """What the balance says about one lost answer: "sent", "not_sent" or None (cannot tell).

    Sound only when this request is the last one that spent on the account since ``before`` was
    read: the ledger applies it to the one pending batch of a crashed try, and to a lost answer
    right after it happened, never to a batch with later batches sent after it.
    """
    if before is None or now is None or charge <= 0:
        return None
    if _same(now, before - charge):
        return "sent"
    if _same(now, before):
        return "not_sent"
    return None


BatchCallback = Callable[["BatchResult", int], None]


class _Resume:
    """One try's walk over the batches. Holds the last balance known to be current."""

    def __init__(
        self,
        client: Any,
        plan: SendPlan,
        ledger: Ledger,
        *,
        on_uncertain: str,
        on_batch: BatchCallback | None,
        try_number: int | None,
    ) -> None:
        self.client = client
        self.plan = plan
        self.ledger = ledger
        self.on_uncertain = on_uncertain
        self.on_batch = on_batch
        self.try_number = try_number
        self.total = len(plan.batches)
        self.balance: float | None = None
        self.results: list[BatchResult] = []
        self.unresolved: list[int] = []

    def charge(self, index: int) -> int:
        # Whether test sends are charged is an open question, so they give no balance evidence.
        return 0 if self.plan.test else len(self.plan.batches[index]) * self.plan.info.pages

    def read_balance(self) -> float:
        self.balance = float(self.client.balance().available)
        return self.balance

    def run(self) -> list[BatchResult]:
        from airflow_provider_kwtsms.results import SKIPPED

        finished = (*_SENT_STATES, SKIPPED_UNCERTAIN)
        todo = [i for i in range(self.total) if self.ledger.state(i) not in finished]
        verdicts: dict[int, str | None] = {}
        if todo:
            # One fresh reading: the baseline for the first request, and the evidence for the
            # batch a crashed try left pending. Judged now, before this try spends anything.
            self.read_balance()
            pending = [i for i in todo if self.ledger.state(i) == PENDING]
            if len(pending) == 1:  # a crashed try leaves at most one; more cannot be told apart
                entry = self.ledger.entries[pending[0]]
                verdicts[pending[0]] = judge_by_balance(entry.get("bb"), self.balance, int(entry.get("c", 0)))
        for index in range(self.total):
            entry = self.ledger.entries.get(index) or {}
            state = entry.get("s")
            if state in _SENT_STATES:
                result = self._result(index, SKIPPED, entry)
            elif state == SKIPPED_UNCERTAIN:
                result = self._uncertain_result(index, entry)
            elif state == PENDING:
                result = self._resolve_pending(index, entry, verdicts.get(index))
            elif state == UNRESOLVED:
                # Later batches were sent after it, so the balance can no longer tell: policy decides.
                result = self._by_policy(index, entry, "its answer was lost in an earlier try")
            else:
                result = self._send(index)
            self._emit(result)
        return self.results

    def _emit(self, result: BatchResult) -> None:
        self.results.append(result)
        if self.on_batch is not None:
            self.on_batch(result, self.total)

    def _result(self, index: int, state: str, entry: dict[str, Any]) -> BatchResult:
        from airflow_provider_kwtsms.results import BatchResult

        return BatchResult(
            index=index,
            numbers=list(self.plan.batches[index]),
            state=state,
            msg_id=entry.get("m"),
            points_charged=int(entry.get("p", 0)),
            balance_after=entry.get("b"),
            unix_timestamp=entry.get("ts"),
            error_code=entry.get("e"),
            try_number=entry.get("t"),
        )

    def _uncertain_result(self, index: int, entry: dict[str, Any]) -> BatchResult:
        from airflow_provider_kwtsms.results import UNCERTAIN

        result = self._result(index, UNCERTAIN, entry)
        result.error_code = result.error_code or "UNCERTAIN"
        result.error_description = "The answer was lost; on_uncertain='skip' did not send it again."
        result.may_have_reached_server = True
        return result

    def _resolve_pending(self, index: int, entry: dict[str, Any], verdict: str | None) -> BatchResult:
        log.info(
            "batch %d/%d: left pending by try %s (balance before %s, charge %s): %s",
            index + 1,
            self.total,
            entry.get("t"),
            entry.get("bb"),
            entry.get("c"),
            {"sent": "the balance shows it went out", "not_sent": "the balance shows it did not go out"}.get(
                verdict or "", "the balance cannot tell"
            ),
        )
        if verdict == "sent":
            return self._mark_inferred(index, entry)
        if verdict == "not_sent":
            return self._send(index)
        return self._by_policy(index, entry, "it was pending when an earlier try stopped")

    def _mark_inferred(self, index: int, entry: dict[str, Any]) -> BatchResult:
        from airflow_provider_kwtsms.results import SENT, SKIPPED

        charge = int(entry.get("c", 0))
        try_number = entry.get("t")
        self.ledger.record(index, s=INFERRED, t=try_number, p=charge, b=self.balance)
        state = SENT if try_number == self.try_number else SKIPPED
        result = self._result(index, state, self.ledger.entries[index])
        log.info(
            "batch %d/%d: the balance shows it went out (charged %d); not sent again",
            index + 1,
            self.total,
            charge,
        )
        return result

    def _by_policy(self, index: int, entry: dict[str, Any], why: str) -> BatchResult:
        from airflow_provider_kwtsms.results import UNCERTAIN

        if self.on_uncertain == "resend" or self.plan.test:
            # A test send delivers nothing, so sending it again harms no one.
            log.warning(
                "batch %d/%d: outcome unknown (%s); %s sends it again",
                index + 1,
                self.total,
                why,
                "test mode" if self.plan.test else "on_uncertain='resend'",
            )
            return self._send(index)
        if self.on_uncertain == "skip":
            log.warning(
                "batch %d/%d: outcome unknown (%s); on_uncertain='skip' does not send it again",
                index + 1,
                self.total,
                why,
            )
            self.ledger.record(index, **{**entry, "s": SKIPPED_UNCERTAIN})
            return self._uncertain_result(index, self.ledger.entries[index])
        log.error(
            "batch %d/%d: outcome unknown (%s); on_uncertain='fail' leaves it to you",
            index + 1,
            self.total,
            why,
        )
        self.ledger.record(index, **{**entry, "s": UNRESOLVED})
        self.unresolved.append(index)
        result = self._result(index, UNCERTAIN, entry)
        result.error_code = "UNCERTAIN"
        result.error_description = "The answer was lost and the balance could not tell whether it went out."
        result.may_have_reached_server = True
        return result

    def _send(self, index: int, resends: int = 0) -> BatchResult:
        from airflow_provider_kwtsms.results import FAILED as R_FAILED
        from airflow_provider_kwtsms.results import SENT, UNCERTAIN

        numbers = list(self.plan.batches[index])
        charge = self.charge(index)
        self.ledger.record(index, s=PENDING, t=self.try_number, bb=self.balance, c=charge)
        try:
            result = self.client.send_batch(
                numbers, self.plan.message, sender=self.plan.sender, test=self.plan.test, index=index
            )
        except KwtSMSNetworkError as exc:
            if exc.may_have_reached_server:
                return self._lost_answer(index, charge, resends, exc.code, exc.description)
            self.ledger.record(index, s=FAILED, t=self.try_number, e=exc.code)
            raise
        except KwtSMSError as exc:
            # An error answer: kwtSMS refused the whole request, nothing went out.
            self.ledger.record(index, s=FAILED, t=self.try_number, e=exc.code)
            raise
        result.try_number = self.try_number
        if result.state == SENT:
            self.ledger.record(
                index,
                s=DONE,
                t=self.try_number,
                m=result.msg_id,
                p=result.points_charged,
                b=result.balance_after,
                ts=result.unix_timestamp,
            )
            if result.balance_after is not None:
                self.balance = float(result.balance_after)
            else:
                self.balance = None  # unknown until the next reading
            return result
        if result.state == UNCERTAIN:
            if result.msg_id:  # an answer with a msg-id is proof enough
                self.ledger.record(index, s=DONE, t=self.try_number, m=result.msg_id, p=charge)
                result.state = SENT
                self.balance = None
                return result
            return self._lost_answer(index, charge, resends, result.error_code, result.error_description)
        if result.state == R_FAILED:
            self.ledger.record(index, s=FAILED, t=self.try_number, e=result.error_code)
            err = result.error()
            if err is not None and err.permanent:
                raise err
            raise BatchNotSentError(
                index, self.total, result.error_code or "FAILED", result.error_description
            )
        raise ValueError(f"send_batch returned an unexpected state {result.state!r} for batch {index}")

    def _lost_answer(
        self, index: int, charge: int, resends: int, code: str | None, description: str | None
    ) -> BatchResult:
        """The request may have gone out. Ask the account at once, while the evidence is fresh."""
        before = self.balance
        log.warning(
            "batch %d/%d: the answer was lost (%s); checking the balance",
            index + 1,
            self.total,
            description or code,
        )
        # If the balance cannot be read either, this raises: the batch stays pending and the next
        # try resolves it.
        now = self.read_balance()
        verdict = judge_by_balance(before, now, charge)
        entry = {"s": PENDING, "t": self.try_number, "bb": before, "c": charge}
        if verdict == "sent":
            return self._mark_inferred(index, entry)
        if verdict == "not_sent":
            if resends >= MAX_RESENDS_IN_TRY:
                self.ledger.record(index, s=FAILED, t=self.try_number, e=code)
                raise BatchNotSentError(index, self.total, code or "NETWORK", description)
            log.info(
                "batch %d/%d: the balance is unchanged, so it did not go out; sending again",
                index + 1,
                self.total,
            )
            return self._send(index, resends + 1)
        return self._by_policy(index, entry, "the balance changed by something other than its charge")


def resume_send(
    client: Any,
    plan: SendPlan,
    store: KeyValueStore,
    *,
    on_uncertain: str = DEFAULT_ON_UNCERTAIN,
    on_batch: BatchCallback | None = None,
    try_number: int | None = None,
) -> SendResult:
    """Send ``plan`` through ``client`` batch by batch, resuming whatever an earlier try left.

    Returns the ``SendResult`` of every batch of every try (earlier batches have state
    "skipped" and keep their msg-ids). Raises ``KwtSMSError`` subclasses: permanent ones
    (bad credentials, sender, balance, ``LedgerMismatchError``, ``UncertainBatchesError``) and
    passing ones (``BatchNotSentError``, network errors) that a retry resumes.
    """
    from airflow_provider_kwtsms.results import SendResult

    if on_uncertain not in ON_UNCERTAIN:
        raise ValueError(f"on_uncertain must be one of {', '.join(ON_UNCERTAIN)}, got {on_uncertain!r}")
    fp = fingerprint(plan)
    ledger = Ledger.load(store)
    if ledger is not None and ledger.head.get("fp") != fp.digest:
        ledger = _changed_send(store, ledger, fp)
    if ledger is None:
        ledger = Ledger.create(store, fp, len(plan.batches), try_number)
    elif any(e.get("s") in _SENT_STATES for e in ledger.entries.values()):
        done = sum(1 for e in ledger.entries.values() if e.get("s") in _SENT_STATES)
        log.info("Resuming the send: %d of %d batches already sent by earlier tries", done, ledger.batches)
    walk = _Resume(client, plan, ledger, on_uncertain=on_uncertain, on_batch=on_batch, try_number=try_number)
    results = walk.run()
    result = SendResult(plan=plan, batches=results, dry_run=False)
    if walk.unresolved:
        numbers = sum(len(plan.batches[i]) for i in walk.unresolved)
        raise UncertainBatchesError(walk.unresolved, len(plan.batches), numbers, result)
    return result


def _changed_send(store: KeyValueStore, ledger: Ledger, fp: Fingerprint) -> Ledger | None:
    """An earlier try planned a different send. Start afresh only when that cannot send twice."""
    changed = ", ".join(fp.differences(ledger.head.get("parts", {}))) or "the send"
    earlier_test = bool(ledger.head.get("parts", {}).get("test"))
    if not ledger.anything_sent() or earlier_test:
        reason = "it sent nothing" if not ledger.anything_sent() else "it was a test send (nothing delivered)"
        log.warning(
            "The %s changed since an earlier try of this task, and %s: starting the new send "
            "from the beginning.",
            changed,
            reason,
        )
        ledger.delete()
        return None
    raise LedgerMismatchError(
        f"An earlier try of this task already sent part of a different send: the {changed} changed "
        "between tries (a template that renders differently on each try, or an upstream result that "
        "changed). Sending the new one now could message the same people twice.",
        action="Make the message and recipients render the same on every try (e.g. use {{ ds }} or "
        "{{ logical_date }}, not the current time). To send the new content anyway, delete this task "
        "instance's send ledger (the 'kwtsms_ledger' keys in its Task State Store, or the "
        "'kwtsms_ledger:…' Variables) and clear the task.",
    )
