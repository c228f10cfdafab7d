"""The one batch loop: every send (client, SMTP channel, the operator's resume ledger) walks its
plan's batches here, under one stop policy.

A channel (``channel.Channel``: the HTTP client, the SMTP sender) plugs in with its half: one
request or e-mail per batch, and the account's balance. The resume ledger plugs in as a
``Journal`` (before a batch: "already decided, skip"; just before its request: "pending"; after
it: the final word, or "send it again"). The loop itself owns what must not differ between paths:

===========================================  ==================  =============================
batch outcome                                this batch          the other batches
===========================================  ==================  =============================
sent                                         sent                go on
refused for its numbers (``BATCH_LEVEL``:    failed              go on; the caller reports the
ERR006, ERR025, ERR026), also when the                           failed batches at the end
coverage list shows no number is covered
ERR028 (same number within 15 s)             sent again last,    go on
                                             once; then failed
any other error answer (login, sender,       failed              stop: the rest fail with
balance, IP, text, queue still full,                             ``attempted=False``
unknown code), SMTP relay refusals
server unreachable after the retries         failed              stop
answer lost (``uncertain``)                  uncertain (the      go on; stop after
                                             journal may settle  ``max_consecutive_uncertain``
                                             it from the         in a row
                                             balance)
===========================================  ==================  =============================

No Airflow import here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSNetworkError
from airflow_provider_kwtsms.results import (
    FAILED,
    SENT,
    UNCERTAIN,
    BatchResult,
    SendPlan,
)

if TYPE_CHECKING:  # a channel (channel.Channel) calls run_batches with itself: types only here
    from airflow_provider_kwtsms.channel import Channel

logger = logging.getLogger("airflow_provider_kwtsms.batch_loop")

# Error codes that depend on the numbers in one batch, not on the account, sender or text: the
# batch fails alone and the send goes on. ERR028 (same number within 15 s) is one of them too,
# but it is first waited out (the batch goes again at the end).
BATCH_LEVEL_CODES = frozenset({"ERR006", "ERR025", "ERR026", "ERR028"})
SAME_NUMBER = "ERR028"
NOT_COVERED = "ERR026"
DEFAULT_MAX_CONSECUTIVE_UNCERTAIN = 3

OnBatch = Callable[[BatchResult, int, int], None]  # (batch, batches done, total)


class Journal(Protocol):
    """What the resume ledger does around each batch (see ``ledger.LedgerJournal``)."""

    def start(self) -> None:
        """Before the first batch."""

    def recorded(self, index: int) -> BatchResult | None:
        """The batch's outcome when already decided (sent by an earlier try, ...); None: send it."""

    def sending(self, index: int) -> None:
        """Just before the batch's request."""

    def settle(self, index: int, result: BatchResult) -> BatchResult | None:
        """The batch's final outcome from what the request gave; None: send it again now."""


@dataclass
class BatchRun:
    """What the loop did: a result per batch, in plan order, and the batch that stopped it."""

    batches: list[BatchResult]
    stopped_by: BatchResult | None = None
    paused: bool = False  # keep_going said no: the batches not attempted wait for the next opening


def run_batches(
    sender: Channel,
    plan: SendPlan,
    *,
    journal: Journal | None = None,
    on_batch: OnBatch | None = None,
    keep_going: Callable[[], bool] | None = None,
) -> BatchRun:
    """Send every batch of ``plan`` through ``sender`` under the stop policy (module docstring).

    ``keep_going`` (a send window) is asked before each batch that would make a request; when it
    says no, the send pauses at that batch boundary: the rest are reported not attempted
    (``PAUSED``), nothing is recorded for them, and a later run (through the ledger) sends them."""
    total = len(plan.batches)
    max_consecutive_uncertain = sender.max_consecutive_uncertain
    done: dict[int, BatchResult] = {}
    deferred: list[tuple[int, float]] = []  # ERR028 batches: index, when they may go again
    stop: BatchResult | None = None
    in_a_row = 0
    coverage = _Coverage(sender)

    def finish(batch: BatchResult) -> None:
        done[batch.index] = batch
        log_batch(batch, len(done), total, sender.transport)
        if on_batch is not None:
            on_batch(batch, len(done), total)

    def send(index: int) -> BatchResult:
        while True:
            refused = coverage.refusal(index, plan.batches[index])
            if refused is None and journal is not None:
                journal.sending(index)
            result = refused or attempt(sender, plan, index)
            settled = result if journal is None else journal.settle(index, result)
            if settled is not None:
                return settled

    if journal is not None:
        journal.start()
    paused = False

    def may_send() -> bool:
        nonlocal paused
        if not paused and keep_going is not None and not keep_going():
            paused = True
        return not paused

    for index in range(total):
        if stop is not None:
            finish(not_attempted(sender, index, plan.batches[index], stop))
            continue
        recorded = journal.recorded(index) if journal is not None else None
        if recorded is not None:
            finish(recorded)
            continue
        if not may_send():
            finish(_paused(sender, index, plan.batches[index]))
            continue
        batch = send(index)
        if batch.state == FAILED and batch.error_code == SAME_NUMBER:
            deferred.append((index, sender.now() + sender.same_number_wait))
            continue  # sent again at the end, once its 15 s have passed
        finish(batch)
        in_a_row = in_a_row + 1 if batch.state == UNCERTAIN else 0
        if stops_send(batch, in_a_row, max_consecutive_uncertain):
            stop = batch

    for index, ready_at in deferred:
        if stop is not None:
            finish(not_attempted(sender, index, plan.batches[index], stop))
            continue
        if not may_send():
            finish(_paused(sender, index, plan.batches[index]))
            continue
        wait = ready_at - sender.now()
        if wait > 0:
            sender.pause(wait)
        batch = send(index)
        finish(batch)
        if stops_send(batch, 0, max_consecutive_uncertain):
            stop = batch

    return BatchRun(batches=[done[i] for i in range(total)], stopped_by=stop, paused=paused)


def stops_send(batch: BatchResult, uncertain_in_a_row: int, max_consecutive_uncertain: int) -> bool:
    """The stop policy: does this batch's outcome stop the batches after it?"""
    if batch.state == UNCERTAIN:
        return uncertain_in_a_row >= max_consecutive_uncertain
    if batch.state != FAILED:
        return False
    if batch.may_have_reached_server is not None:
        return True  # the server stayed unreachable through every retry
    return batch.error_code not in BATCH_LEVEL_CODES


def attempt(sender: Channel, plan: SendPlan, index: int) -> BatchResult:
    """One batch through ``sender``; whatever it raises becomes the batch's result."""
    numbers = plan.batches[index]
    make = sender.result_type
    try:
        return sender.send_batch(
            numbers, plan.message, sender=plan.sender, test=plan.test, index=index, wait_same_number=False
        )
    except KwtSMSNetworkError as exc:
        return make(
            index=index,
            numbers=list(numbers),
            state=UNCERTAIN if exc.may_have_reached_server else FAILED,
            error_code=exc.code,
            error_description=exc.description,
            may_have_reached_server=exc.may_have_reached_server,
        )
    except KwtSMSError as exc:
        return make(
            index=index,
            numbers=list(numbers),
            state=FAILED,
            error_code=exc.code,
            error_description=exc.description,
        )
    except Exception as exc:
        # A defect of ours must not lose the send's account: the request may have gone out,
        # so the batch is uncertain (never sent again blindly) and the error is logged whole.
        logger.exception("kwtSMS batch #%d: unexpected error", index + 1)
        return make(
            index=index,
            numbers=list(numbers),
            state=UNCERTAIN,
            error_code="UNEXPECTED",
            error_description=f"unexpected {type(exc).__name__} while sending; the batch may have "
            "been sent (please report this as a bug)",
            may_have_reached_server=True,
        )


PAUSED = "PAUSED"  # the error code of a batch left for the next opening of a send window


def _paused(sender: Channel, index: int, numbers: list[str]) -> BatchResult:
    return sender.result_type(
        index=index,
        numbers=list(numbers),
        state=FAILED,
        error_code=PAUSED,
        error_description="Not attempted yet: the send window closed; sent when it opens again.",
        attempted=False,
    )


def not_attempted(sender: Channel, index: int, numbers: list[str], cause: BatchResult) -> BatchResult:
    return sender.result_type(
        index=index,
        numbers=list(numbers),
        state=FAILED,
        error_code=cause.error_code,
        error_description=f"Not attempted: batch {cause.index + 1} ended {cause.state} with "
        f"{cause.error_code}, which would fail this batch too.",
        attempted=False,
    )


class _Coverage:
    """The account's coverage, asked once per send and only when a batch is about to go."""

    def __init__(self, sender: Channel) -> None:
        self._sender = sender
        self._prefixes: tuple[str, ...] | None = None
        self._asked = False

    def refusal(self, index: int, numbers: list[str]) -> BatchResult | None:
        """A failed ERR026 result when no number of the batch is covered; else None (send it).

        A batch with some covered numbers goes as it is: the gateway takes those and leaves the
        others out (``SendResult.gateway_dropped``), as it does without this check.
        """
        if not self._asked:
            self._asked = True
            prefixes = self._sender.covered_prefixes()
            self._prefixes = tuple(sorted(prefixes)) if prefixes else None
        if self._prefixes is None or any(number.startswith(self._prefixes) for number in numbers):
            return None
        return self._sender.result_type(
            index=index,
            numbers=list(numbers),
            state=FAILED,
            error_code=NOT_COVERED,
            error_description=f"Not sent: none of its {len(numbers)} numbers is in a country the "
            f"account covers ({', '.join('+' + p for p in self._prefixes)}); the gateway would "
            "answer ERR026, so no request was made.",
        )


def log_batch(batch: BatchResult, done: int, total: int, transport: str) -> None:
    """The one per-batch log line. Never the numbers, the text or the credentials."""
    unit = "e-mail" if transport == "smtp" else "batch"
    if batch.state == SENT and transport == "smtp":
        lost = " (the relay's reply was lost)" if getattr(batch, "relay_reply_lost", False) else ""
        logger.info(
            "kwtSMS %s %d/%d (#%d): %d numbers handed to the relay%s; unconfirmed: kwtSMS answers "
            "nothing by e-mail",
            unit,
            done,
            total,
            batch.index + 1,
            len(batch.numbers),
            lost,
        )
    elif batch.state == SENT:
        logger.info(
            "kwtSMS %s %d/%d (#%d): sent %d numbers, msg-id %s, %d points, balance after %s",
            unit,
            done,
            total,
            batch.index + 1,
            len(batch.numbers),
            batch.msg_id,
            batch.points_charged,
            batch.balance_after,
        )
    elif batch.state == "skipped":
        logger.info(
            "kwtSMS %s %d/%d (#%d): %d numbers already sent by try %s, msg-id %s; not sent again",
            unit,
            done,
            total,
            batch.index + 1,
            len(batch.numbers),
            batch.try_number,
            batch.msg_id or "unknown",
        )
    else:
        logger.warning(
            "kwtSMS %s %d/%d (#%d): %s, %d numbers, %s: %s",
            unit,
            done,
            total,
            batch.index + 1,
            "NOT sent" if batch.state == FAILED else batch.state,
            len(batch.numbers),
            batch.error_code,
            batch.error_description,
        )
