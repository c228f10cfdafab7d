"""The one batch loop: every send (client, SMTP channel, the operator's resume ledger) walks its
plan's batches here, under one stop policy.

A channel (``channel.Channel``: the HTTP client, the SMTP sender) plugs in with its half: it
delivers a batch once (``BatchChannel``), and says the account's balance. Every wait and retry of
a request is the engine's step (``send.engine``); the wait of a batch answered ERR028 is here.
The resume ledger plugs in as a ``Journal`` (before a batch: "already decided, skip"; just
before its request: "pending"; after it: the final word, or "send it again"). The loop itself
owns what must not differ between paths: the stop policy, whose one home is the table in
docs/client.md ("When a batch fails"); ``stops_send`` below is its code.

No Airflow import here.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSNetworkError
from airflow_provider_kwtsms.rate.bucket import interval
from airflow_provider_kwtsms.send.engine import SAME_NUMBER, Batch, Delivers, send_batch
from airflow_provider_kwtsms.send.results import (
    FAILED,
    SENT,
    UNCERTAIN,
    BatchResult,
    SendPlan,
)

if TYPE_CHECKING:
    from airflow_provider_kwtsms.send.results import Balance

logger = logging.getLogger("airflow_provider_kwtsms.send.batch_loop")

# Error codes that depend on the numbers in one batch, not on the account, sender or text: the
# batch fails alone and the send goes on. ERR028 (same number within 15 s) is one of them too,
# but it is first waited out (the batch goes again after the others).
BATCH_LEVEL_CODES = frozenset({"ERR006", "ERR025", "ERR026", "ERR028"})
NOT_COVERED = "ERR026"

# The most of a turn the wait gives up to the journal's record before it (a slow store only
# lowers the rate then, never shortens a gap between starts).
MAX_RECORD_ALLOWANCE = 0.2

OnBatch = Callable[[BatchResult, int, int], None]  # (batch, batches done, total)


class BatchChannel(Delivers, Protocol):
    """What the loop needs of a channel (``send.channel.Channel`` is one): a batch delivered once
    per call (``engine.Delivers``: ``deliver``, ``pace``, ``hold``, ``policy``), the channel's
    clock, and what the account covers. The seam is here, not the class, so that the loop knows
    no channel and a channel only delivers what the loop hands it."""

    @property
    def transport(self) -> str: ...

    @property
    def max_in_flight(self) -> int: ...

    @property
    def request_seconds(self) -> float: ...

    def now(self) -> float: ...

    def balance(self) -> Balance: ...

    def covered_prefixes(self, *, read: bool = True, fresh: bool = False) -> frozenset[str] | None: ...


class StopSending(KwtSMSError):
    """Raised by a journal before a batch: this run may start no request more (a newer try owns
    the send: ``ledger.fence``). The answers in flight are still settled."""


class Journal(Protocol):
    """What the resume ledger does around each batch (see ``ledger.LedgerJournal``)."""

    def start(self) -> None:
        """Before the first batch."""

    def recorded(self, index: int) -> BatchResult | None:
        """The batch's outcome when already decided (sent by an earlier try, ...); None: send it."""

    def sending(self, index: int) -> None:
        """Just before the batch's request. May raise ``StopSending``: a newer try owns the send
        (or the store cannot prove this one does), and it starts no request more (``ledger_fence``)."""

    def settle(self, index: int, result: BatchResult) -> BatchResult | None:
        """The batch's final outcome from what the request gave; None: send it again now."""


@dataclass
class BatchRun:
    """What the loop did: a result per batch, in plan order, and the batch that stopped it."""

    batches: list[BatchResult]
    stopped_by: BatchResult | None = None
    paused: bool = False  # keep_going said no: the batches not attempted wait for the next opening


def run_batches(
    channel: BatchChannel,
    plan: SendPlan,
    *,
    journal: Journal | None = None,
    on_batch: OnBatch | None = None,
    keep_going: Callable[[], bool] | None = None,
) -> BatchRun:
    """Send every batch of ``plan`` through ``channel`` under the stop policy (module docstring).

    Up to ``channel.max_in_flight`` requests are in flight at once (``_Run``); the results come
    back in plan order whatever order the answers arrive in.

    ``keep_going`` (a send window) is asked before each batch that would make a request; when it
    says no, the send pauses at that batch boundary: the rest are reported not attempted
    (``PAUSED``), recorded as not sent at most (the batch recorded just before its turn), and a
    later run (through the ledger) sends them."""
    return _Run(channel, plan, journal, on_batch, keep_going).go()


class _Run:
    """One walk over a plan's batches, with up to ``max_in_flight`` requests in flight.

    One thread (the caller's) decides everything: it takes each request's turn at the rate
    (``channel.pace()``), asks the stop policy and the send window, records the batch with the
    journal, and only then hands the request to a worker thread; it settles every answer (the
    journal, the stop policy, ``on_batch``) as it collects them. So the journal and the callbacks
    are never called from two threads, no request starts once an outcome has stopped the send
    (those in flight finish and are accounted for), and a lost answer is settled only when no
    request is in flight and every other answer is settled: the balance it is judged by then
    holds every other charge of the send.
    """

    def __init__(
        self,
        channel: BatchChannel,
        plan: SendPlan,
        journal: Journal | None,
        on_batch: OnBatch | None,
        keep_going: Callable[[], bool] | None,
    ) -> None:
        self.channel, self.plan, self.journal = channel, plan, journal
        self.on_batch, self.keep_going = on_batch, keep_going
        self.total = len(plan.batches)
        self.width = max(1, min(int(channel.max_in_flight), self.total))
        self.policy = channel.policy
        self.max_uncertain = self.policy.max_consecutive_uncertain
        self.done: dict[int, BatchResult] = {}
        self.again: deque[int] = deque()  # the journal said "send it again now"
        self.deferred: deque[tuple[int, float]] = deque()  # ERR028: index, when it may go again
        self.same_number_waits: dict[int, int] = {}  # ERR028 waits taken, by batch
        self.stop: BatchResult | None = None
        self.in_a_row = 0
        self.paused = False
        self.coverage = _Coverage(channel)
        self.pool: ThreadPoolExecutor | None = None
        self.in_flight: dict[Future[BatchResult], int] = {}
        self.lost: list[BatchResult] = []
        self.last_turn: float | None = None  # the channel's clock at the last request's turn
        self.record_seconds = 0.0  # how long the journal's last "pending" record took

    def go(self) -> BatchRun:
        if self.journal is not None:
            self.journal.start()
        if self.width > 1:
            self.pool = ThreadPoolExecutor(max_workers=self.width, thread_name_prefix="kwtsms-send")
        try:
            self._walk()
        finally:
            if self.pool is not None:
                # After an error: no thread outlives the call (their batches stay pending).
                self.pool.shutdown(wait=True, cancel_futures=True)
        return BatchRun(
            batches=[self.done[i] for i in range(self.total)], stopped_by=self.stop, paused=self.paused
        )

    def _walk(self) -> None:
        following = 0
        while True:
            self._collect(block=False)
            if self.again:
                index, again = self.again.popleft(), True
            elif following < self.total:
                index, again = following, False
                following += 1
                if self._decided(index):
                    continue
            elif self.deferred:
                index, ready_at = self.deferred.popleft()
                again = False
                if self.stop is None and self.in_flight:
                    self.deferred.appendleft((index, ready_at))
                    self._collect(block=True)  # the answers first: they may stop the send
                    continue
                wait = ready_at - self.channel.now()
                if self.stop is None and wait > 0 and self._may_send():
                    self.channel.pause(wait)
            elif self.in_flight or self.lost:
                self._collect(block=True)
                self._settle_lost()
                continue
            else:
                return
            self._start(index, again)

    def _decided(self, index: int) -> bool:
        """Before its turn: a batch that needs no request (the send stopped, or already decided)."""
        numbers = self.plan.batches[index]
        if self.stop is not None:
            self._finish(not_attempted(self.channel, index, numbers, self.stop))
            return True
        recorded = self.journal.recorded(index) if self.journal is not None else None
        if recorded is not None:
            self._finish(recorded)
            return True
        return False

    def _start(self, index: int, again: bool) -> None:
        numbers = self.plan.batches[index]
        if self.pool is not None:
            while len(self.in_flight) >= self.width:
                self._collect(block=True)
            self._settle_lost()
        if self.stop is not None:
            return self._drop(index, again, not_attempted(self.channel, index, numbers, self.stop))
        if self.pool is None and not self._may_send():  # asked once per batch, just before it goes
            return self._drop(index, again, _paused(self.channel, index, numbers))
        remaining = self.total - len(self.done) - len(self.in_flight) - len(self.lost)
        refused = self.coverage.refusal(index, numbers, remaining)
        if refused is not None:
            return self._settle(index, refused)
        if self.pool is None:
            if self.journal is not None and not self._record_sending(index, again):
                return None
            return self._answer(index, attempt(self.channel, self.plan, index, guard=self._guard()))
        self._await_turn()
        if self.stop is None and not self._may_send():  # asked once per batch, just before its turn
            return self._drop(index, again, _paused(self.channel, index, numbers))
        if self.stop is None and self.coverage.worth_reading:  # an ERR026 answer came meanwhile
            refused = self.coverage.refusal(index, numbers, remaining)
            if refused is not None:
                return self._settle(index, refused)  # settles its entry: not sent
        if self.stop is None:
            self._settle_halting()  # an answer that came during the wait may stop the send
        if self.stop is not None:
            return self._drop(index, again, not_attempted(self.channel, index, numbers, self.stop))
        # Recorded just before its turn, not a whole interval ahead, and after every lost answer
        # in was judged: a batch pending but not yet sent must never count as in flight, in this
        # try's judgement or in the next try's (a try that dies leaves pending only the requests
        # that left, or were about to). The record comes before the pacer, so its time never
        # shortens a gap between starts; an answer that comes during the short pace is taken at
        # the next turn.
        if self.journal is not None:
            began = time.monotonic()
            if not self._record_sending(index, again):
                return None
            self.record_seconds = min(MAX_RECORD_ALLOWANCE, time.monotonic() - began)
        self.channel.pace()  # this request's turn at the rate: the pacer gates its start
        self.last_turn = self.channel.now()
        launching = getattr(self.journal, "launching", None)
        if launching is not None:
            launching()  # the fence's lease outlasts the hand-over to a thread (a read when short)
        future = self.pool.submit(attempt, self.channel, self.plan, index, paced=True, guard=self._guard())
        self.in_flight[future] = index
        # The answers that came meanwhile are settled now, while the request is out: the
        # journal's writes take none of the next request's turn.
        self._collect(block=False)

    def _record_sending(self, index: int, again: bool) -> bool:
        """The journal records the batch pending; False when this try no longer holds the send (it
        then stops here: nothing more starts, the answers in flight are still settled)."""
        assert self.journal is not None
        try:
            self.journal.sending(index)
        except StopSending as exc:
            cause = self.channel.result_type(
                index=index,
                numbers=list(self.plan.batches[index]),
                state=FAILED,
                error_code=exc.code,
                error_description=exc.description,
                attempted=False,
            )
            self.stop = self.stop or cause
            self._drop(index, again, cause)
            return False
        return True

    def _guard(self) -> Callable[[], None] | None:
        """What the channel calls right before each request of a batch (the fence's lease)."""
        return getattr(self.journal, "guard", None)

    def _await_turn(self) -> None:
        """Until this request's turn, watch the requests in flight: an answer that stops the send
        or was lost is settled before the request starts (so a stop costs no extra request when
        the answers are quicker than the rate); other answers wait until it has left."""
        deadline = self.channel.now() + self._until_next_turn()
        while not self._settle_halting():
            out = [f for f in self.in_flight if not f.done()]
            left = deadline - self.channel.now()
            if left <= 0:
                return
            if not out:
                # Nothing to watch: wait here, not in the pacer, so that the batch is recorded
                # pending just before its turn (a try killed meanwhile leaves it unrecorded).
                self.channel.pause(left)
                return
            wait(out, timeout=left, return_when=FIRST_COMPLETED)

    def _settle_halting(self) -> bool:
        """Settle the answers in when one of them must be settled before another request starts."""
        arrived = [f for f in self.in_flight if f.done()]
        if not any(_halts(f.result(), self.max_uncertain) for f in arrived):
            return False
        self._collect(block=False)
        self._settle_lost()
        return True

    def _drop(self, index: int, pending: bool, result: BatchResult) -> None:
        """A batch that will not go now. One the journal holds as pending (recorded, or left to
        send again) is settled as not sent: its entry must not stay pending. The others are not
        recorded."""
        if pending and self.journal is not None:
            result = self.journal.settle(index, result) or result
        self._finish(result)

    def _may_send(self) -> bool:
        if not self.paused and self.keep_going is not None and not self.keep_going():
            self.paused = True
        return not self.paused

    def _until_next_turn(self) -> float:
        """Real seconds until the rate gives the next request its turn (about: the pacer decides)."""
        rate = getattr(self.channel, "rate", 0.0) or 0.0
        if rate <= 0 or self.last_turn is None:
            return 0.0
        # less the time the journal's record took last time: it is written just before the turn
        return max(0.0, self.last_turn + interval(rate) - self.record_seconds - self.channel.now())

    def _collect(self, *, block: bool, timeout: float | None = None) -> None:
        """Take the answers that have arrived (when ``block``: at least one, or wait ``timeout``
        seconds at most), in plan order."""
        if not self.in_flight or (block and timeout == 0):
            return
        finished, _ = wait(self.in_flight, timeout=timeout if block else 0, return_when=FIRST_COMPLETED)
        for future in sorted(finished, key=self.in_flight.__getitem__):
            index = self.in_flight.pop(future)
            self._answer(index, future.result())

    def _answer(self, index: int, result: BatchResult) -> None:
        if result.state == UNCERTAIN and self.pool is not None:
            self.lost.append(result)  # settled once nothing is in flight (_settle_lost)
            return
        self._settle(index, result)

    def _settle_lost(self) -> None:
        """Lost answers: wait for every request in flight (their answers settled first), then
        settle the lost ones in plan order."""
        if not self.lost:
            return
        while self.in_flight:
            self._collect(block=True)
        lost, self.lost = sorted(self.lost, key=lambda b: b.index), []
        for result in lost:
            self._settle(result.index, result)

    def _settle(self, index: int, result: BatchResult) -> None:
        settled = result if self.journal is None else self.journal.settle(index, result)
        if settled is None:
            self.again.append(index)  # the journal found it did not go out: again, before the rest
            return
        if settled.state == FAILED and settled.error_code == SAME_NUMBER and self._wait_same_number(index):
            return
        if settled.state == FAILED and settled.error_code == NOT_COVERED:
            self.coverage.saw_not_covered()
        self._finish(settled)
        self.in_a_row = self.in_a_row + 1 if settled.state == UNCERTAIN else 0
        if self.stop is None and stops_send(settled, self.in_a_row, self.max_uncertain):
            self.stop = settled

    def _wait_same_number(self, index: int) -> bool:
        """ERR028: the batch goes again after the others, once its 15 s have passed, up to
        ``same_number_retries`` times (an alert in a burst waits its turn); False: it fails."""
        waits = self.same_number_waits.get(index, 0)
        if waits >= self.policy.same_number_retries:
            return False
        self.same_number_waits[index] = waits + 1
        logger.info(
            "kwtSMS batch #%d: ERR028 (a number had an SMS within 15 s); it goes again in %.1f s, "
            "after the others (wait %d/%d)",
            index + 1,
            self.policy.same_number_wait,
            waits + 1,
            self.policy.same_number_retries,
        )
        self.deferred.append((index, self.channel.now() + self.policy.same_number_wait))
        return True

    def _finish(self, batch: BatchResult) -> None:
        self.done[batch.index] = batch
        log_batch(batch, len(self.done), self.total, self.channel.transport)
        if self.on_batch is not None:
            self.on_batch(batch, len(self.done), self.total)


def _halts(batch: BatchResult, max_consecutive_uncertain: int) -> bool:
    """Must this answer be settled before another request starts? A lost one (settled with nothing
    in flight), one that stops the send, or ERR026 (the coverage list may spare the next ones)."""
    if batch.state == UNCERTAIN or batch.error_code == NOT_COVERED:
        return True
    return stops_send(batch, 0, max_consecutive_uncertain)


def stops_send(batch: BatchResult, uncertain_in_a_row: int, max_consecutive_uncertain: int) -> bool:
    """The stop policy: does this batch's outcome stop the batches after it?"""
    if batch.state == UNCERTAIN:
        return uncertain_in_a_row >= max_consecutive_uncertain
    if batch.state != FAILED:
        return False
    if batch.may_have_reached_server is not None:
        return True  # the server stayed unreachable through every retry
    return batch.error_code not in BATCH_LEVEL_CODES


def attempt(
    channel: BatchChannel,
    plan: SendPlan,
    index: int,
    *,
    paced: bool = False,
    guard: Callable[[], None] | None = None,
) -> BatchResult:
    """One batch through the engine's step (``engine.send_batch``: its retries and waits); whatever
    it raises becomes the batch's result. ``guard`` is called right before each request of the
    batch (the ledger's fence)."""
    numbers = plan.batches[index]
    make = channel.result_type
    batch = Batch(
        index=index, numbers=numbers, message=plan.text_of(index), sender=plan.sender, test=plan.test
    )
    try:
        return send_batch(channel, batch, paced=paced, guard=guard)
    except KwtSMSNetworkError as exc:
        return make(
            index=index,
            numbers=list(numbers),
            state=UNCERTAIN if exc.may_have_reached_server else FAILED,
            error_code=exc.code,
            error_description=exc.description,
            may_have_reached_server=exc.may_have_reached_server,
            exception=exc,
        )
    except KwtSMSError as exc:
        return make(
            index=index,
            numbers=list(numbers),
            state=FAILED,
            error_code=exc.code,
            error_description=exc.description,
            exception=exc,
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


def _paused(channel: BatchChannel, index: int, numbers: list[str]) -> BatchResult:
    return channel.result_type(
        index=index,
        numbers=list(numbers),
        state=FAILED,
        error_code=PAUSED,
        error_description="Not attempted yet: the send window closed; sent when it opens again.",
        attempted=False,
    )


def not_attempted(channel: BatchChannel, index: int, numbers: list[str], cause: BatchResult) -> BatchResult:
    return channel.result_type(
        index=index,
        numbers=list(numbers),
        state=FAILED,
        error_code=cause.error_code,
        error_description=f"Not attempted: batch {cause.index + 1} ended {cause.state} with "
        f"{cause.error_code}, which would fail this batch too.",
        attempted=False,
    )


class _Coverage:
    """The coverage check: a batch none of whose numbers the account covers fails (ERR026) with
    no request. Requests are what it saves, so it spends as few as it can: it uses the list the
    machine already knows (no request), reads it (once per client) when a batch would be refused
    on a list this client did not read itself, or when the gateway refused a batch with ERR026
    (the rest may be refused too); otherwise the gateway decides, as without the check."""

    def __init__(self, channel: BatchChannel) -> None:
        self._channel = channel
        self._prefixes: tuple[str, ...] | None = None
        self._known = False  # asked the channel without a request
        self._fresh = False  # read by this channel
        self._want_fresh = False

    @property
    def worth_reading(self) -> bool:
        """A batch was refused for its countries since the list was last read by this channel."""
        return self._want_fresh and not self._fresh

    def saw_not_covered(self) -> None:
        """A batch was refused for its countries: the list is worth a request now."""
        self._want_fresh = True

    def _ask(self, *, fresh: bool) -> None:
        prefixes = self._channel.covered_prefixes(read=False, fresh=fresh)
        self._prefixes = tuple(sorted(prefixes)) if prefixes else None
        self._known, self._fresh = True, self._fresh or fresh

    def refusal(self, index: int, numbers: list[str], remaining: int) -> BatchResult | None:
        """A failed ERR026 result when no number of the batch is covered; else None (send it).

        ``remaining``: the batches still to send, this one included. A read costs one request
        and saves at most one per batch, so with one batch left the gateway decides.
        A batch with some covered numbers goes as it is: the gateway takes those and leaves the
        others out (``SendResult.gateway_dropped``), as it does without this check.
        """
        may_read = remaining > 1
        if not self._known or (self._want_fresh and not self._fresh and may_read):
            self._ask(fresh=self._want_fresh and may_read)
        if self._prefixes is None or any(number.startswith(self._prefixes) for number in numbers):
            return None
        if not self._fresh:  # refused only on a list read now: never on an old one
            if not may_read:
                return None
            self._ask(fresh=True)
            if self._prefixes is None or any(number.startswith(self._prefixes) for number in numbers):
                return None
        return self._channel.result_type(
            index=index,
            numbers=list(numbers),
            state=FAILED,
            error_code=NOT_COVERED,
            error_description=f"Not sent: none of its {len(numbers)} numbers is in a country the "
            f"account covers ({', '.join('+' + p for p in self._prefixes)}); the gateway would "
            "answer ERR026, so no request was made.",
        )


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 number``, ``3 numbers``, ``2 batches``: the log lines' counts, in words that agree."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def credits_text(value: float | None) -> str:
    """A balance as people read it: ``1000``, ``12.5`` (no ``1000.0``, no exponent); ``unknown``."""
    return "unknown" if value is None else f"{value:.15g}"


def log_batch(batch: BatchResult, done: int, total: int, transport: str) -> None:
    """The one per-batch log line. Never the numbers, the text or the credentials."""
    unit = "e-mail" if transport == "smtp" else "batch"
    numbers = plural(len(batch.numbers), "number")
    if batch.state == SENT and transport == "smtp":
        lost = " (the relay's reply was lost)" if getattr(batch, "relay_reply_lost", False) else ""
        logger.info(
            "kwtSMS %s %d/%d (#%d): %s handed to the relay%s; unconfirmed: kwtSMS answers nothing by e-mail",
            unit,
            done,
            total,
            batch.index + 1,
            numbers,
            lost,
        )
    elif batch.state == SENT:
        logger.info(
            "kwtSMS %s %d/%d (#%d): sent %s, msg-id %s, %s, balance after %s",
            unit,
            done,
            total,
            batch.index + 1,
            numbers,
            batch.msg_id,
            plural(batch.points_charged, "credit"),
            credits_text(batch.balance_after),
        )
    elif batch.state == "skipped":
        logger.info(
            "kwtSMS %s %d/%d (#%d): %s already sent by try %s, msg-id %s; not sent again",
            unit,
            done,
            total,
            batch.index + 1,
            numbers,
            batch.try_number,
            batch.msg_id or "unknown",
        )
    else:
        logger.warning(
            "kwtSMS %s %d/%d (#%d): %s, %s, %s: %s",
            unit,
            done,
            total,
            batch.index + 1,
            "NOT sent" if batch.state == FAILED else batch.state,
            numbers,
            batch.error_code,
            batch.error_description,
        )
