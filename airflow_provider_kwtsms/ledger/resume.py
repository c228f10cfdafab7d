"""The send ledger: a bulk send that resumes across retries, never twice and never lost.

kwtSMS has no idempotency key, so a retried bulk send would message every earlier batch again.
The ledger is a journal plugged into the one batch loop (``batch_loop.run_batches``): it records
each batch *before* its request (pending) and *after* it (done, with its msg-id), in a key-value
store that outlives the process (Airflow's task state store or a Variable; see
``operators/_ledger_store.py``). On the next try:

- done batches are skipped (their msg-ids still appear in the result);
- batches that certainly did not go out (failed, or never started) are sent;
- a pending batch (request sent, answer lost) is resolved from the account: the balance now is
  compared with the balance recorded before its request. Unchanged: not sent, send it. Lower by
  exactly the batch's charge: sent, skip it. Anything else (someone else spent, a top-up): the
  outcome cannot be known and ``on_uncertain`` decides: ``"skip"`` (at most once), ``"resend"``
  (at least once) or ``"fail"`` (stop and let a person decide).

Which batches stop the others is the loop's policy, the same as ``KwtSMSClient.send``: a batch
refused for its numbers (ERR026 country not covered, ...) fails alone, every other batch is sent,
and ``resume_send`` then raises ``BatchesFailedError`` naming the failed batches.

The ledger stores batch states, not numbers: the numbers are re-derived from the plan, which is
why the ledger carries a fingerprint of the plan (sender, text, test flag, the batches' numbers).
A changed plan is never mistaken for the same send. The stored form is ``ledger_codec``'s.

No Airflow import here: the ledger works from any Python program with any store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from airflow_provider_kwtsms.constants import DEFAULT_ON_UNCERTAIN, ON_UNCERTAIN
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.answer import number_text
from airflow_provider_kwtsms.ledger.codec import (
    CHUNK_SIZE,
    HEAD_KEY,
    LEDGER_VERSION,
    MAX_LEDGER_BATCHES,
    BatchState,
    DamagedValue,
    Entry,
    Fingerprint,
    Head,
    OtherVersion,
    chunk_key,
    decode_chunk,
    decode_head,
    encode_chunk,
    encode_head,
    fingerprint,
)
from airflow_provider_kwtsms.ledger.fence import (
    FENCE_LEASE,
    Fence,
    SupersededError,
    forget_owners,
    late_outcome_is_final,
)
from airflow_provider_kwtsms.ledger.journal import LedgerJournal, judge_by_balance
from airflow_provider_kwtsms.send.batch_loop import BatchRun, run_batches
from airflow_provider_kwtsms.send.results import FAILED, UNCERTAIN, BatchResult, SendResult

if TYPE_CHECKING:
    from airflow_provider_kwtsms.send.channel import Channel
    from airflow_provider_kwtsms.send.results import SendPlan

__all__ = [
    "CHUNK_SIZE",
    "HEAD_KEY",
    "LEDGER_VERSION",
    "BatchNotSentError",
    "BatchState",
    "BatchesFailedError",
    "Entry",
    "KeyValueStore",
    "Ledger",
    "LedgerDamagedError",
    "LedgerMismatchError",
    "MemoryStore",
    "SupersededError",
    "UncertainBatchesError",
    "delete_ledger",
    "fingerprint",
    "judge_by_balance",
    "resume_send",
]

log = logging.getLogger(__name__)

# The batch states by their old names.
PENDING = BatchState.PENDING
DONE = BatchState.DONE
INFERRED = BatchState.INFERRED
SKIPPED_UNCERTAIN = BatchState.SKIPPED_UNCERTAIN
UNRESOLVED = BatchState.UNRESOLVED


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


# -- errors -----------------------------------------------------------------------------------
def _batch_list(indices: list[int]) -> str:
    return ", ".join(str(i + 1) for i in indices[:20]) + (" …" if len(indices) > 20 else "")


class LedgerMismatchError(KwtSMSError):
    """An earlier try sent (part of) a different send under this task instance."""

    def __init__(self, description: str, *, action: str) -> None:
        super().__init__("LEDGER_MISMATCH", description, action=action)
        self.permanent = True
        self.retryable = False


class LedgerDamagedError(LedgerMismatchError):
    """A stored ledger value is not one this provider writes, or does not fit the send: the ledger
    cannot tell which batches went out, so nothing is sent. A ``LedgerMismatchError`` (the stored
    ledger does not fit this send), with its own code."""

    def __init__(self, key: str, problem: str, *, keys: str) -> None:
        KwtSMSError.__init__(
            self,
            "LEDGER_DAMAGED",
            f"The stored send ledger is damaged: {key!r} {problem}. It can no longer tell which "
            "batches of this send went out, so nothing was sent.",
            action="Check the messages your kwtSMS account sent for this send. Then either restore the "
            f"ledger keys ({keys}) from a backup and clear the task, or delete them and send only to the "
            "numbers not reached yet (deleting them and clearing the task sends to every number again).",
        )
        self.permanent = True
        self.retryable = False
        self.key = key


class UncertainBatchesError(KwtSMSError):
    """Some batches may or may not have gone out, and on_uncertain="fail" asked a person to decide."""

    def __init__(
        self, indices: list[int], total: int, numbers: int, result: SendResult | None = None
    ) -> None:
        super().__init__(
            "UNCERTAIN",
            f"{len(indices)} of {total} batches ({numbers} numbers; batch {_batch_list(indices)}) may or "
            "may not have been sent: the request reached kwtSMS but its answer was lost, and the account "
            "balance could not tell (no balance figure from before its request, or something else spent or "
            "topped up meanwhile).",
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


class SendPaused(KwtSMSError):
    """The send window closed: the send stopped at a batch boundary; the ledger resumes it later."""

    def __init__(self, result: SendResult | None = None) -> None:
        waiting = [] if result is None else [b for b in result.batches if b.error_code == "PAUSED"]
        super().__init__(
            "PAUSED",
            f"The send window closed with {len(waiting)} batch(es) "
            f"({sum(len(b.numbers) for b in waiting)} numbers) not yet sent.",
            action="Nothing to do: they are sent when the window opens again (the ledger keeps the rest).",
        )
        self.retryable = True
        self.result = result


class BatchesFailedError(KwtSMSError):
    """Every batch was tried; some were refused for their numbers (ERR026 country not covered,
    ERR025/ERR006 invalid numbers) and no retry can send them. Carries the first refusal's code."""

    def __init__(self, failed: list[BatchResult], total: int, result: SendResult | None = None) -> None:
        first = failed[0]
        codes = sorted({b.error_code or "FAILED" for b in failed})
        numbers = sum(len(b.numbers) for b in failed)
        why = first.error_description or "see the summary"
        super().__init__(
            first.error_code or "FAILED",
            f"{len(failed)} of {total} batches ({numbers} numbers; batch "
            f"{_batch_list([b.index for b in failed])}) were refused ({', '.join(codes)}: {why}); "
            "every other batch was sent.",
        )
        self.action = (
            f"{self.action} Then clear the task: the batches already sent are remembered and will not be "
            "sent again."
        )
        self.permanent = True
        self.retryable = False
        self.indices = [b.index for b in failed]
        self.codes = codes
        self.result = result


# -- the stored ledger ------------------------------------------------------------------------
class Ledger:
    """Batch states of one send in a store: a head (fingerprint, batch count) and chunks of entries."""

    def __init__(self, store: KeyValueStore, head: Head, entries: dict[int, Entry]):
        self.store = store
        self.head = head
        self.entries = entries
        self.fence: Fence | None = None  # the try's hold on the send: writes only while it owns it

    @property
    def batches(self) -> int:
        return self.head.batches

    @classmethod
    def load(
        cls,
        store: KeyValueStore,
        *,
        expected_batches: int | None = None,
        expected_digest: str | None = None,
    ) -> Ledger | None:
        """The stored ledger, every value checked, or None when there is none.

        ``expected_batches`` and ``expected_digest`` are the plan's (``resume_send`` passes
        both): a head with the plan's fingerprint must count the plan's batches, and then only
        the plan's chunks are read. A head of another send (another fingerprint: the caller's
        "changed send"), or any head when the plan is not given, is read up to its own count,
        which must be at most ``MAX_LEDGER_BATCHES``.
        Raises ``LedgerDamagedError`` naming the key for a value this provider never writes, a
        count that does not fit the plan, an empty chunk or one without its first batch, a chunk
        missing before a stored one, or a chunk or entry past the send's last batch.
        """
        raw = store.get(HEAD_KEY)
        if raw is None:
            if store.get(chunk_key(0)) is not None:  # entries without their head: not a fresh send
                raise LedgerDamagedError(
                    HEAD_KEY,
                    f"is missing while '{chunk_key(0)}' is stored (the head is written before any entry)",
                    keys=f"every '{HEAD_KEY}.c<n>'",
                )
            return None

        def damaged(key: str, problem: str, chunks: int | None = None) -> LedgerDamagedError:
            keys = f"'{HEAD_KEY}' and every '{HEAD_KEY}.c<n>'"
            if chunks is not None:  # the stored ledger's own chunks are known
                named = [f"'{chunk_key(0)}'", f"'{chunk_key(chunks - 1)}'"][: min(chunks, 2)]
                keys = " and ".join([f"'{HEAD_KEY}'", " to ".join(named)] if named else [f"'{HEAD_KEY}'"])
            return LedgerDamagedError(key, problem, keys=keys)

        try:
            head = decode_head(raw)
        except OtherVersion as exc:
            raise LedgerMismatchError(
                f"The stored send ledger has version {exc.version}; this provider reads version "
                f"{LEDGER_VERSION}.",
                action="Finish the send with the provider version that started it, or delete the ledger.",
            ) from None
        except DamagedValue as exc:
            raise damaged(HEAD_KEY, str(exc)) from None
        same_send = expected_digest is None or head.digest == expected_digest
        if same_send and expected_batches is not None and head.batches != expected_batches:
            raise damaged(
                HEAD_KEY,
                f"counts {head.batches} batches, but this send (the same sender, text, test flag and "
                f"recipients, by its fingerprint) has {expected_batches}",
                -(-expected_batches // CHUNK_SIZE),
            )
        size, batches = head.chunk_size, head.batches
        if not (same_send and expected_batches is not None) and batches > MAX_LEDGER_BATCHES:
            raise damaged(
                HEAD_KEY,
                f"counts {number_text(batches)} batches; a send has at most {MAX_LEDGER_BATCHES:,}",
            )
        # Now bounded: by the plan, or for another send's ledger by MAX_LEDGER_BATCHES.
        chunks = -(-batches // size)
        if head.written > chunks:
            problem = f"says {head.written} chunks were written; {batches} batches make {chunks}"
            raise damaged(HEAD_KEY, problem)
        entries: dict[int, Entry] = {}
        missing: int | None = None
        # A chunk is written when one of its batches is first recorded, and batches are recorded
        # in order: the stored chunks are c0 up to some cN, each holding its first batch. The
        # chunks after cN are missing as a rule (none of their batches recorded yet).
        for chunk in range(chunks + 1):  # one past the last: a chunk there is damage
            key = chunk_key(chunk)
            text = store.get(key)
            if text is None and chunk < head.written:
                last = chunk_key(head.written - 1)
                raise damaged(
                    key, f"is missing, but the head says chunks up to '{last}' were written", chunks
                )
            if text is None:
                missing = chunk if missing is None else missing
                continue
            if chunk == chunks:
                last = f"'{chunk_key(chunks - 1)}'" if chunks else "none"
                raise damaged(
                    key, f"is stored, but the head counts {batches} batches (last chunk {last})", chunks
                )
            if missing is not None:
                raise damaged(
                    chunk_key(missing),
                    f"is missing while a later chunk, {key!r}, is stored (a chunk is written when the "
                    "first of its batches is recorded, and batches are recorded in order)",
                    chunks,
                )
            first = chunk * size
            try:
                found = decode_chunk(text, first, size=size, end=batches)
            except DamagedValue as exc:
                raise damaged(key, str(exc), chunks) from None
            if first not in found:
                raise damaged(
                    key,
                    f"has no entry for its first batch, {first + 1} (key '0'), which was recorded "
                    "when the chunk was written",
                    chunks,
                )
            entries.update(found)
        return cls(store, head, entries)

    @classmethod
    def create(cls, store: KeyValueStore, fp: Fingerprint, batches: int, try_number: int | None) -> Ledger:
        head = Head(LEDGER_VERSION, fp.digest, fp.parts(), batches, CHUNK_SIZE, try_number)
        store.set(HEAD_KEY, encode_head(head))
        return cls(store, head, {})

    def record(self, index: int, entry: Entry) -> None:
        """Write one batch's entry (and so its chunk) through to the store; once a newer try owns
        the send, keep it for this try's yield record instead (``ledger_fence``)."""
        if self.fence is not None and not self.fence.write_allowed():
            self.fence.keep_late(index, entry)
            return
        self.entries[index] = entry
        size = self.head.chunk_size
        first = index // size * size
        chunk = {i: e for i, e in self.entries.items() if first <= i < min(first + size, self.batches)}
        self.store.set(chunk_key(index // size), encode_chunk(chunk, first))
        if index // size >= self.head.written:
            # After the chunk (a crash between leaves a chunk the head does not count, never the
            # reverse): once per chunk, so a chunk lost later reads as damage, not as a fresh start.
            self.head = replace(self.head, written=index // size + 1)
            self.store.set(HEAD_KEY, encode_head(self.head))

    def state(self, index: int) -> BatchState | None:
        entry = self.entries.get(index)
        return entry.state if entry else None

    def anything_sent(self) -> bool:
        """True when some batch went out or may have: a fresh start could send it twice."""
        return any(e.state.maybe_sent for e in self.entries.values())

    def delete(self) -> None:
        for chunk in range(-(-self.batches // self.head.chunk_size)):
            self.store.delete(chunk_key(chunk))
        self.store.delete(HEAD_KEY)


def delete_ledger(store: KeyValueStore) -> None:
    """Remove a send's ledger (after success, or to start a changed send deliberately). A damaged
    one too: every key it may have, since its head cannot say how many (a deliberate step)."""
    try:
        ledger = Ledger.load(store)
    except LedgerDamagedError:
        for chunk in range(-(-MAX_LEDGER_BATCHES // CHUNK_SIZE)):
            store.delete(chunk_key(chunk))
        store.delete(HEAD_KEY)
    else:
        if ledger is not None:
            ledger.delete()
    forget_owners(store)


BatchCallback = Callable[[BatchResult, int], None]


# -- resume -----------------------------------------------------------------------------------
def resume_send(
    client: Channel,
    plan: SendPlan,
    store: KeyValueStore,
    *,
    on_uncertain: str = DEFAULT_ON_UNCERTAIN,
    on_batch: BatchCallback | None = None,
    try_number: int | None = None,
    keep_going: Callable[[], bool] | None = None,
    fence_lease: float = FENCE_LEASE,
) -> SendResult:
    """Send ``plan`` through ``client`` batch by batch, resuming whatever an earlier try left.

    One try owns the send at a time (``ledger_fence``): this call first claims it (waiting
    ``fence_lease`` and a margin), and stops with ``SupersededError`` as soon as a newer call
    claims it, sending nothing more; the newer call accounts for what this one sent.

    ``keep_going`` (a send window) is asked before each batch; when it says no, the send stops at
    that batch boundary and ``SendPaused`` is raised: a later call resumes from the ledger.

    Returns the ``SendResult`` of every batch of every try (earlier batches have state
    "skipped" and keep their msg-ids) when every batch is sent. Otherwise raises, after sending
    every batch the stop policy allows (``batch_loop``): the error that stopped the send
    (permanent: bad credentials, sender, balance; passing: ``BatchNotSentError``, network
    errors, which a retry resumes), ``UncertainBatchesError``, or ``BatchesFailedError`` for
    batches refused for their numbers. ``LedgerMismatchError`` (``LedgerDamagedError`` for a
    damaged stored ledger) before anything is sent.
    """
    if on_uncertain not in ON_UNCERTAIN:
        raise ValueError(f"on_uncertain must be one of {', '.join(ON_UNCERTAIN)}, got {on_uncertain!r}")
    fence = Fence(
        store,
        now=client.now,
        pause=client.pause,
        request_seconds=client.request_seconds,
        try_number=try_number,
        lease=fence_lease,
    )
    fence.claim()  # a newer try that claimed meanwhile wins: SupersededError, nothing sent
    try:
        run, journal = _run_owned(client, plan, store, fence, on_uncertain, on_batch, try_number, keep_going)
    finally:
        fence.close()  # nothing of this try's is in the air now: a newer try need not wait for it
    result = SendResult(plan=plan, batches=run.batches, dry_run=False)
    total = len(plan.batches)
    if fence.lost is not None:
        # It stopped holding the send: what it sent is in the ledger or its yield record.
        raise fence.lost
    if run.paused and run.stopped_by is None and not journal.unresolved:
        raise SendPaused(result)
    if run.stopped_by is not None and not (run.stopped_by.state == UNCERTAIN and journal.unresolved):
        raise _stop_error(run.stopped_by, total)
    if journal.unresolved:
        numbers = sum(len(plan.batches[i]) for i in journal.unresolved)
        raise UncertainBatchesError(journal.unresolved, total, numbers, result)
    failed = [b for b in run.batches if b.state == FAILED and b.attempted]
    if failed:
        errors = [b.error() for b in failed]
        if any(err is not None and err.permanent for err in errors):
            raise BatchesFailedError(failed, total, result)
        raise _stop_error(failed[0], total)
    return result


def _run_owned(
    client: Channel,
    plan: SendPlan,
    store: KeyValueStore,
    fence: Fence,
    on_uncertain: str,
    on_batch: BatchCallback | None,
    try_number: int | None,
    keep_going: Callable[[], bool] | None,
) -> tuple[BatchRun, LedgerJournal]:
    """The send, once this try owns it: load the ledger, settle what other tries left, run."""
    fp = fingerprint(plan)
    ledger = Ledger.load(store, expected_batches=len(plan.batches), expected_digest=fp.digest)
    if ledger is not None and ledger.head.digest != fp.digest:
        ledger = _changed_send(store, ledger, fp)
    if ledger is None:
        ledger = Ledger.create(store, fp, len(plan.batches), try_number)
    ledger.fence = fence
    if ledger.entries:
        _take_over(ledger, fence, len(plan.batches))
        if any(e.state.sent for e in ledger.entries.values()):
            done = sum(1 for e in ledger.entries.values() if e.state.sent)
            log.info(
                "Resuming the send: %d of %d batches already sent by earlier tries", done, ledger.batches
            )
    journal = LedgerJournal(
        client, plan, ledger, on_uncertain=on_uncertain, try_number=try_number, fence=fence
    )
    run = run_batches(
        client,
        plan,
        journal=journal,
        on_batch=None if on_batch is None else lambda batch, done, total: on_batch(batch, total),
        keep_going=keep_going,
    )
    return run, journal


def _take_over(ledger: Ledger, fence: Fence, batches: int) -> None:
    """Batches other tries left pending: wait until their requests have ended (``ledger_fence``),
    then take what those tries learnt late; the rest are judged from the balance as before."""
    pending = {i: e for i, e in ledger.entries.items() if e.state == PENDING}
    if not pending:
        return
    for index, late in fence.settle_writers(pending, batches).items():
        if late_outcome_is_final(late):
            log.info(
                "batch %d/%d: %s, as the try that sent it learnt after it stopped",
                index + 1,
                batches,
                "sent" if late.state.sent else "not sent",
            )
            ledger.record(index, late)


def _stop_error(batch: BatchResult, total: int) -> KwtSMSError:
    """The exception for a batch that ended the try: its own error when permanent or a network
    failure; else ``BatchNotSentError`` (a retry sends it)."""
    err = batch.error()
    if err is not None and (err.permanent or isinstance(err, KwtSMSNetworkError)):
        return err
    return BatchNotSentError(batch.index, total, batch.error_code or "FAILED", batch.error_description)


def _changed_send(store: KeyValueStore, ledger: Ledger, fp: Fingerprint) -> Ledger | None:
    """An earlier try planned a different send. Start afresh only when that cannot send twice."""
    changed = ", ".join(fp.differences(ledger.head.parts)) or "the send"
    earlier_test = bool(ledger.head.parts.get("test"))
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
