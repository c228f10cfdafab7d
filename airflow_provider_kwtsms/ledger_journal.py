"""The resume ledger's part in the batch loop (``batch_loop.Journal``): what it records around
each batch, and how it settles a lost answer from the account's balance. See ``ledger``."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from airflow_provider_kwtsms.ledger_codec import BatchState, Entry
from airflow_provider_kwtsms.results import FAILED, SENT, SKIPPED, UNCERTAIN, BatchResult

if TYPE_CHECKING:
    from airflow_provider_kwtsms.channel import Channel
    from airflow_provider_kwtsms.ledger import Ledger
    from airflow_provider_kwtsms.results import SendPlan

log = logging.getLogger("airflow_provider_kwtsms.ledger")

# In one try, a batch found "not sent" after a lost answer is sent again at most this often
# before the try gives up and leaves it to the next Airflow retry.
MAX_RESENDS_IN_TRY = 2

PENDING = BatchState.PENDING
DONE = BatchState.DONE
INFERRED = BatchState.INFERRED
SKIPPED_UNCERTAIN = BatchState.SKIPPED_UNCERTAIN
UNRESOLVED = BatchState.UNRESOLVED
SKIP_NOTE = "The answer was lost; on_uncertain='skip' did not send it again."


def judge_by_balance(before: float | None, now: float | None, charge: int) -> str | None:
    """What the balance says about one lost answer: "sent", "not_sent" or None (cannot tell).

    Sound only when this request is the last one that spent on the account since ``before`` was
    read: the ledger applies it to the one pending batch of a crashed try, and to a lost answer
    right after it happened, never to a batch with later batches sent after it.
    """
    if before is None or now is None or charge <= 0:
        return None
    if abs(now - (before - charge)) < 1e-6:
        return "sent"
    if abs(now - before) < 1e-6:
        return "not_sent"
    return None


class LedgerJournal:
    """The ledger's part in one try's walk over the batches. Holds the last balance known to be current."""

    def __init__(
        self,
        sender: Channel,
        plan: SendPlan,
        ledger: Ledger,
        *,
        on_uncertain: str,
        try_number: int | None,
    ) -> None:
        self.sender = sender
        self.plan = plan
        self.ledger = ledger
        self.on_uncertain = on_uncertain
        self.try_number = try_number
        self.total = len(plan.batches)
        self.balance: float | None = None
        self.unresolved: list[int] = []
        self._verdicts: dict[int, str | None] = {}
        self._resends: dict[int, int] = {}

    def charge(self, index: int) -> int:
        # Whether test sends are charged is an open question, so they give no balance evidence.
        return 0 if self.plan.test else len(self.plan.batches[index]) * self.plan.info.pages

    def read_balance(self) -> float:
        self.balance = float(self.sender.balance().available)
        return self.balance

    # -- the Journal protocol ---------------------------------------------------------------
    def start(self) -> None:
        finished = (DONE, INFERRED, SKIPPED_UNCERTAIN)
        todo = [i for i in range(self.total) if self.ledger.state(i) not in finished]
        if not todo:
            return
        # One fresh reading: the baseline for the first request, and the evidence for the batch
        # a crashed try left pending. Judged now, before this try spends anything.
        self.read_balance()
        pending = [i for i in todo if self.ledger.state(i) == PENDING]
        if len(pending) == 1:  # a crashed try leaves at most one; more cannot be told apart
            entry = self.ledger.entries[pending[0]]
            self._verdicts[pending[0]] = judge_by_balance(
                entry.balance_before, self.balance, entry.charge or 0
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
        verdict = self._verdicts.get(index)
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
        entry = Entry(PENDING, self.try_number, balance_before=self.balance, charge=self.charge(index))
        self.ledger.record(index, entry)

    def settle(self, index: int, result: BatchResult) -> BatchResult | None:
        result.try_number = self.try_number
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
            self.balance = float(result.balance_after) if result.balance_after is not None else None
            result.state = SENT
            return result
        if result.state == UNCERTAIN:
            return self._lost_answer(index, result)
        # Certainly not sent: an error answer, a refusal before any request, no connection.
        self.ledger.record(index, Entry(BatchState.FAILED, self.try_number, error_code=result.error_code))
        return result

    # -- internals --------------------------------------------------------------------------
    def _result(self, index: int, state: str, entry: Entry) -> BatchResult:
        return self.sender.result_type(
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
        """The request may have gone out. Ask the account at once, while the evidence is fresh."""
        before, charge = self.balance, self.charge(index)
        log.warning(
            "batch %d/%d: the answer was lost (%s); checking the balance",
            index + 1,
            self.total,
            result.error_description or result.error_code,
        )
        # If the balance cannot be read either, this raises: the batch stays pending and the next
        # try resolves it.
        verdict = judge_by_balance(before, self.read_balance(), charge)
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
        settled = self._by_policy(index, entry, "the balance changed by something other than its charge")
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
