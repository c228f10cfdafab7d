"""The resume ledger's part in the batch loop (``batch_loop.Journal``): what it records around
each batch, and how it settles a lost answer from the account's balance. See ``ledger``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from airflow_provider_kwtsms.ledger.codec import BatchState, Entry
from airflow_provider_kwtsms.ledger.fence import FENCE_LAPSED, Fence
from airflow_provider_kwtsms.send.results import FAILED, SENT, SKIPPED, UNCERTAIN, BatchResult

if TYPE_CHECKING:
    from airflow_provider_kwtsms.ledger.stored import Ledger
    from airflow_provider_kwtsms.send.batch_loop import BatchChannel
    from airflow_provider_kwtsms.send.results import SendPlan

log = logging.getLogger("airflow_provider_kwtsms.ledger")

# The lease left, at least, when a request is handed to its thread (else it is renewed first).
LEASE_FOR_HANDOVER = 0.1

# A send of this many batches (1,000 numbers) or more reads the balance once before its first
# request, so that a lost first answer is judged by the balance like every later one (their
# figures come with the send answers): 1 request in 6 at this size, 1 in 11 at 10 batches. A
# smaller send (an alert, a mapped chunk of up to 800 numbers) spends no request on it and leaves
# that one case to on_uncertain. A figure from another send of the account (another task's last
# answer) is never used instead: with both spending, the drop could equal the charge by chance and
# a batch never sent would count as sent.
BASELINE_MIN_BATCHES = 5

# In one try, a batch found "not sent" after a lost answer is sent again at most this often
# before the try gives up and leaves it to the next Airflow retry.
MAX_RESENDS_IN_TRY = 2

PENDING = BatchState.PENDING
DONE = BatchState.DONE
INFERRED = BatchState.INFERRED
SKIPPED_UNCERTAIN = BatchState.SKIPPED_UNCERTAIN
UNRESOLVED = BatchState.UNRESOLVED
SKIP_NOTE = "The answer was lost; on_uncertain='skip' did not send it again."


def judge_by_balance(before: float | None, now: float | None, charge: int, others: int = 0) -> str | None:
    """What the balance says about one lost answer: "sent", "not_sent" or None (cannot tell).

    ``before``: the balance before the request, less what the account spent on this send's other
    answered batches since (``LedgerJournal.before``); ``others``: what the other batches whose
    answer is lost too would cost. The drop ``before - now`` is the sum of the charges that went
    out: none of them (0: not sent) or all of them (``charge + others``: sent); anything between
    cannot be told apart. Sound while this send is the only one spending on the account.
    """
    if before is None or now is None or charge <= 0:
        return None
    drop = before - now
    if abs(drop - (charge + others)) < 1e-6:
        return "sent"
    if abs(drop) < 1e-6:
        return "not_sent"
    return None


class LedgerJournal:
    """The ledger's part in one try's walk over the batches.

    The balance evidence costs no request while the send goes well: every send answer says the
    balance after it (``balance``, the latest figure known). A pending batch records that figure
    as its "before"; a lost answer is judged with one balance read, made only then (and at the
    start, only when a crashed try left a pending batch that has a "before" to judge it by). With
    several requests in flight, the answers after "before" are subtracted by their own figures:
    a batch answered with a balance below "before" spent after it (``before()``).

    The batch loop calls it from one thread only, and settles a lost answer only when no request
    is in flight and every answered batch is settled (``batch_loop``).
    """

    def __init__(
        self,
        channel: BatchChannel,
        plan: SendPlan,
        ledger: Ledger,
        *,
        on_uncertain: str,
        try_number: int | None,
        fence: Fence | None = None,
    ) -> None:
        self.channel = channel
        self.fence = fence
        self.plan = plan
        self.ledger = ledger
        self.on_uncertain = on_uncertain
        self.try_number = try_number
        self.total = len(plan.batches)
        self.balance: float | None = None  # the latest figure: a send's balance-after or a read
        self.unresolved: list[int] = []
        self._verdicts: dict[int, str | None] = {}
        self._resends: dict[int, int] = {}
        self._in_flight: set[int] = set()  # recorded pending, not settled yet

    def charge(self, index: int) -> int:
        # Whether test sends are charged is an open question, so they give no balance evidence.
        return 0 if self.plan.test else len(self.plan.batches[index]) * self.plan.pages_of(index)

    def read_balance(self) -> float:
        self.balance = float(self.channel.balance().available)
        return self.balance

    def before(self, entry: Entry) -> float | None:
        """The balance just before ``entry``'s request as far as the answers tell: its recorded
        figure less the charges of the batches answered with a lower balance (spent after it)."""
        figure = entry.balance_before
        if figure is None:
            return None
        spent = 0.0
        for other in self.ledger.entries.values():
            if not other.state.sent or other is entry:
                continue
            if other.balance_after is None or other.points is None:
                if _same_or_later(other.try_number, entry.try_number):
                    return None  # a charge we cannot place in time
                continue
            if other.balance_after < figure - 1e-6:
                spent += other.points
        return figure - spent

    def _judge_group(self, group: list[int]) -> None:
        """One balance read judges every pending batch in ``group`` (their answers were lost)."""
        entries = {i: self.ledger.entries[i] for i in group if i in self.ledger.entries}
        usable = {i: e for i, e in entries.items() if e.balance_before is not None and (e.charge or 0) > 0}
        if not usable:
            self._verdicts.update(dict.fromkeys(group))  # nothing to judge by: no request spent
            return
        now = self.read_balance()
        for i in group:
            entry = entries.get(i)
            if entry is None or i not in usable:
                self._verdicts[i] = None
                continue
            others = sum(
                e.charge or 0
                for j, e in entries.items()
                if j != i and _same_or_later(e.try_number, entry.try_number)
            )
            self._verdicts[i] = judge_by_balance(self.before(entry), now, entry.charge or 0, others)

    # -- the Journal protocol ---------------------------------------------------------------
    def start(self) -> None:
        # Only the batches a crashed try left pending need the account now; each other batch's
        # evidence comes from the send answers. Judged before this try spends anything.
        pending = [i for i in range(self.total) if self.ledger.state(i) == PENDING]
        if pending:
            self._judge_group(pending)
        elif self.total - len(self.ledger.entries) >= BASELINE_MIN_BATCHES:
            self._read_baseline()

    def _read_baseline(self) -> None:
        """A balance figure for the first batch of a large send, so that its lost answer is judged
        by the balance like the others' (a small send leaves that one case to ``on_uncertain``)."""
        from airflow_provider_kwtsms.errors import KwtSMSError

        try:
            self.read_balance()
        except KwtSMSError as exc:
            log.warning(
                "no balance figure before the first batch (%s): a lost first answer goes to on_uncertain=%r",
                exc.code,
                self.on_uncertain,
            )

    def recorded(self, index: int) -> BatchResult | None:
        entry = self.ledger.entries.get(index)
        if entry is None or entry.state == BatchState.FAILED:
            return None
        if entry.state.sent:
            return self._result(index, SKIPPED, entry)
        if entry.state == SKIPPED_UNCERTAIN:
            return self._uncertain(index, entry, SKIP_NOTE)
        if entry.state == UNRESOLVED:
            # Later batches were sent after it, so the balance can no longer tell: policy decides.
            return self._by_policy(index, entry, "its answer was lost in an earlier try")
        verdict = self._verdicts.pop(index, None)
        log.info(
            "batch %d/%d: left pending by try %s (balance before %s, charge %s): %s",
            index + 1,
            self.total,
            entry.try_number,
            entry.balance_before,
            entry.charge,
            {"sent": "the balance shows it went out", "not_sent": "the balance shows it did not go out"}.get(
                verdict or "", "the balance cannot tell"
            ),
        )
        if verdict == "sent":
            return self._mark_inferred(index, entry)
        if verdict == "not_sent":
            return None
        return self._by_policy(index, entry, "it was pending when an earlier try stopped")

    def sending(self, index: int) -> None:
        owner = None
        if self.fence is not None:
            self.fence.renew()  # one read: still the send's owner? (raises SupersededError)
            owner = self.fence.token
        entry = Entry(
            PENDING, self.try_number, balance_before=self.balance, charge=self.charge(index), owner=owner
        )
        self.ledger.record(index, entry)
        self._in_flight.add(index)

    def launching(self) -> None:
        """Right before a request is handed to a thread: a lease that outlasts the hand-over."""
        if self.fence is not None:
            self.fence.ensure_lease(LEASE_FOR_HANDOVER)

    @property
    def guard(self) -> Callable[[], None] | None:
        return None if self.fence is None else self.fence.guard

    def settle(self, index: int, result: BatchResult) -> BatchResult | None:
        result.try_number = self.try_number
        self._in_flight.discard(index)
        if self.fence is not None and result.error_code == FENCE_LAPSED and self.fence.still_owner():
            return None  # not written: its turn again, under a renewed lease
        if self.fence is not None and self.fence.lost is not None:
            return self._after_superseded(index, result)
        if result.state == SENT or (result.state == UNCERTAIN and result.msg_id):
            # An answer with a msg-id is proof enough that it went out.
            points = result.points_charged if result.state == SENT else self.charge(index)
            self.ledger.record(
                index,
                Entry(
                    DONE,
                    self.try_number,
                    msg_id=result.msg_id,
                    points=points,
                    balance_after=result.balance_after,
                    timestamp=result.unix_timestamp,
                ),
            )
            if result.balance_after is not None:
                self.balance = float(result.balance_after)
            result.state = SENT
            return result
        if result.state == UNCERTAIN:
            return self._lost_answer(index, result)
        # Certainly not sent: an error answer, a refusal before any request, no connection.
        self.ledger.record(index, Entry(BatchState.FAILED, self.try_number, error_code=result.error_code))
        return result

    # -- internals --------------------------------------------------------------------------
    def _after_superseded(self, index: int, result: BatchResult) -> BatchResult:
        """An outcome learnt after a newer try took the send over: for the yield record (the
        newer try reads it), never judged here (the newer try judges from the balance)."""
        assert self.fence is not None
        if result.state == SENT or (result.state == UNCERTAIN and result.msg_id):
            late = Entry(DONE, self.try_number, msg_id=result.msg_id, points=result.points_charged or None)
            result.state = SENT
        elif result.state == UNCERTAIN:
            pending = self.ledger.entries.get(index)
            late = pending if pending is not None else Entry(PENDING, self.try_number, owner=self.fence.token)
        else:
            late = Entry(BatchState.FAILED, self.try_number, error_code=result.error_code)
            if result.error_code == FENCE_LAPSED and self.fence.lost is not None:
                result = replace(result, error_code=self.fence.lost.code, attempted=False)
        self.ledger.record(index, late)  # kept for the yield: the fence refuses the store
        return result

    def _result(self, index: int, state: str, entry: Entry) -> BatchResult:
        return self.channel.result_type(
            index=index,
            numbers=list(self.plan.batches[index]),
            state=state,
            msg_id=entry.msg_id,
            points_charged=int(entry.points or 0),
            balance_after=entry.balance_after,
            unix_timestamp=entry.timestamp,
            error_code=entry.error_code,
            try_number=entry.try_number,
        )

    def _uncertain(self, index: int, entry: Entry, why: str) -> BatchResult:
        result = self._result(index, UNCERTAIN, entry)
        result.error_code = result.error_code or "UNCERTAIN"
        result.error_description = why
        result.may_have_reached_server = True
        return result

    def _lost_answer(self, index: int, result: BatchResult) -> BatchResult | None:
        """The request may have gone out. Judge it (with the other lost ones of its moment) from
        one balance read, made only when the ledger holds a "before" figure to compare it with."""
        log.warning(
            "batch %d/%d: the answer was lost (%s); %s",
            index + 1,
            self.total,
            result.error_description or result.error_code,
            "checking the balance"
            if self.ledger.entries[index].balance_before is not None
            else "no balance figure before it to judge by",
        )
        if index not in self._verdicts:
            # If the balance cannot be read, this raises: the batches stay pending and the next
            # try resolves them.
            self._judge_group(sorted({index} | self._in_flight))
        verdict = self._verdicts.pop(index)
        pending = self.ledger.entries[index]
        before, charge = pending.balance_before, self.charge(index)
        entry = Entry(PENDING, self.try_number, balance_before=before, charge=charge)
        if verdict == "sent":
            return self._mark_inferred(index, entry)
        resends = self._resends.get(index, 0)
        if verdict == "not_sent":
            if resends >= MAX_RESENDS_IN_TRY:
                self.ledger.record(
                    index, Entry(BatchState.FAILED, self.try_number, error_code=result.error_code)
                )
                return replace(result, state=FAILED, may_have_reached_server=False)
            log.info(
                "batch %d/%d: the balance is unchanged, so it did not go out; sending again",
                index + 1,
                self.total,
            )
            self._resends[index] = resends + 1
            return None
        if resends >= MAX_RESENDS_IN_TRY:  # "resend" found no answer again and again: a person decides
            return self._unresolved(index, entry, "its answer was lost on every resend")
        why = (
            "no balance figure from before its request (the first answers of a try bring one)"
            if before is None or charge <= 0
            else "the balance changed by something other than its charge"
        )
        settled = self._by_policy(index, entry, why)
        if settled is None:
            self._resends[index] = resends + 1
        return settled

    def _mark_inferred(self, index: int, entry: Entry) -> BatchResult:
        inferred = Entry(INFERRED, entry.try_number, points=entry.charge or 0, balance_after=self.balance)
        self.ledger.record(index, inferred)
        state = SENT if entry.try_number == self.try_number else SKIPPED
        log.info(
            "batch %d/%d: the balance shows it went out (charged %d); not sent again",
            index + 1,
            self.total,
            entry.charge or 0,
        )
        return self._result(index, state, inferred)

    def _by_policy(self, index: int, entry: Entry, why: str) -> BatchResult | None:
        if self.on_uncertain == "resend" or self.plan.test:
            # A test send delivers nothing, so sending it again harms no one.
            log.warning(
                "batch %d/%d: outcome unknown (%s); %s sends it again",
                index + 1,
                self.total,
                why,
                "test mode" if self.plan.test else "on_uncertain='resend'",
            )
            return None
        if self.on_uncertain == "skip":
            log.warning(
                "batch %d/%d: outcome unknown (%s); on_uncertain='skip' does not send it again",
                index + 1,
                self.total,
                why,
            )
            skipped = replace(entry, state=SKIPPED_UNCERTAIN)
            self.ledger.record(index, skipped)
            return self._uncertain(index, skipped, SKIP_NOTE)
        return self._unresolved(index, entry, why)

    def _unresolved(self, index: int, entry: Entry, why: str) -> BatchResult:
        log.error(
            "batch %d/%d: outcome unknown (%s); on_uncertain='fail' leaves it to you",
            index + 1,
            self.total,
            why,
        )
        self.ledger.record(index, replace(entry, state=UNRESOLVED))
        self.unresolved.append(index)
        return self._uncertain(
            index, entry, "The answer was lost and the balance could not tell whether it went out."
        )


def _same_or_later(try_number: int | None, than: int | None) -> bool:
    """Whether a batch of try ``try_number`` may have spent after one of try ``than`` (unknown: yes)."""
    return try_number is None or than is None or try_number >= than
