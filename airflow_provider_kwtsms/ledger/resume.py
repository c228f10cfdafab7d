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
from typing import TYPE_CHECKING

from airflow_provider_kwtsms.constants import DEFAULT_ON_UNCERTAIN, ON_UNCERTAIN
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.ledger.codec import (
    CHUNK_SIZE,
    HEAD_KEY,
    LEDGER_VERSION,
    MAX_LEDGER_BATCHES,
    BatchState,
    Entry,
    Fingerprint,
    chunk_key,
    fingerprint,
)
from airflow_provider_kwtsms.ledger.errors import (
    BatchesFailedError,
    BatchNotSentError,
    LedgerDamagedError,
    LedgerMismatchError,
    SendPaused,
    UncertainBatchesError,
)
from airflow_provider_kwtsms.ledger.fence import (
    FENCE_LEASE,
    Fence,
    SupersededError,
    forget_owners,
    late_outcome_is_final,
)
from airflow_provider_kwtsms.ledger.journal import LedgerJournal, judge_by_balance
from airflow_provider_kwtsms.ledger.store import KeyValueStore, MemoryStore
from airflow_provider_kwtsms.ledger.stored import Ledger
from airflow_provider_kwtsms.send.batch_loop import BatchRun, run_batches
from airflow_provider_kwtsms.send.results import FAILED, UNCERTAIN, BatchResult, SendResult

if TYPE_CHECKING:
    from airflow_provider_kwtsms.send.batch_loop import BatchChannel
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
    "SendPaused",
    "SupersededError",
    "UncertainBatchesError",
    "complete_ledger",
    "delete_ledger",
    "fingerprint",
    "judge_by_balance",
    "resume_send",
]

log = logging.getLogger("airflow_provider_kwtsms.ledger")  # one logger for the ledger's story


def complete_ledger(store: KeyValueStore) -> None:
    """After a successful send: keep only a compact record that every batch went out (one small
    value), so that a retry of the task, whatever failed after the send, sends nothing again."""
    ledger = Ledger.load(store)
    if (
        ledger is not None
        and all(e.state.sent for e in ledger.entries.values())
        and (len(ledger.entries) == ledger.batches)
    ):
        ledger.complete()
    forget_owners(store)


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
    client: BatchChannel,
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
        raise KwtSMSInputError(f"on_uncertain must be one of {', '.join(ON_UNCERTAIN)}, got {on_uncertain!r}")
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
    client: BatchChannel,
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
    pending = {i: e for i, e in ledger.entries.items() if e.state == BatchState.PENDING}
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
