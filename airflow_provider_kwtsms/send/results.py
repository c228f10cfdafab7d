"""The typed answers of the kwtSMS client: plain dataclasses, no HTTP and no Airflow.

A bulk send is described twice: the ``SendPlan`` (what will be sent: the sorted recipients,
the cleaned text, its pages, the batches and the credit estimate) and the ``SendResult`` (what
happened to each batch). Together they account for every recipient given: sent, invalid,
duplicate, failed or uncertain.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms.constants import MAX_BATCH, MAX_MOBILE_CHARS
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSNetworkError

if TYPE_CHECKING:
    from airflow_provider_kwtsms.phone.recipients import Recipients
    from airflow_provider_kwtsms.text.message import MessageInfo


class Outcome(StrEnum):
    """A batch's outcome in a send: the one vocabulary of results, summaries and logs (a member
    is its string, so summaries and XComs read as before). The ledger's own record of a batch is
    ``ledger.codec.BatchState``; its stored letters live only in the codec."""

    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # the request may have been processed but its answer was lost
    SKIPPED = "skipped"  # already sent by an earlier try (set by the resume ledger)
    # How a summary shows a batch "sent" by e-mail: the relay took it, kwtSMS confirms nothing.
    SUBMITTED_UNCONFIRMED = "submitted_unconfirmed"


# The outcomes by name, as every module has imported them.
SENT, FAILED, UNCERTAIN, SKIPPED = Outcome.SENT, Outcome.FAILED, Outcome.UNCERTAIN, Outcome.SKIPPED

# Per-number lists in ``SendResult.to_dict`` stop at this many entries (the counts stay exact):
# a summary of a million-number send must still fit in an XCom.
DEFAULT_LIST_LIMIT = 1000


@dataclass(frozen=True)
class Balance:
    available: float
    purchased: float | None = None  # not every answer carries it


@dataclass(frozen=True)
class ValidationResult:
    ok: list[str]  # valid and routable
    er: list[str]  # format error
    nr: list[str]  # no route (country not active)


@dataclass(frozen=True)
class MessageStatus:
    msg_id: str
    status: str
    description: str
    code: str | None = None  # set when the gateway answered with an error code (ERR030 for test messages)


@dataclass(frozen=True)
class DeliveryReport:
    number: str
    status: str


@dataclass
class BatchResult:
    """The outcome of one request to ``send`` (at most 200 numbers, 2,500 characters of them)."""

    index: int
    numbers: list[str]
    state: str  # an Outcome (a str: summaries and older callers compare strings)
    msg_id: str | None = None
    points_charged: int = 0
    balance_after: float | None = None
    unix_timestamp: int | None = None  # server clock, GMT+3 (Asia/Kuwait), not UTC
    error_code: str | None = None
    error_description: str | None = None
    try_number: int | None = None  # filled by the resume ledger
    numbers_accepted: int | None = None  # the gateway's own count ("numbers" in its answer)
    attempted: bool = True  # False: never sent because an earlier batch stopped the send
    may_have_reached_server: bool | None = None  # for "uncertain" and network failures
    # The error the batch ended on, as raised (its class, flags and action kept); not in summaries.
    exception: KwtSMSError | None = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        """Numbers the gateway took for this batch (its own count when it gave one)."""
        if self.state not in (SENT, SKIPPED):
            return 0
        return self.numbers_accepted if self.numbers_accepted is not None else len(self.numbers)

    def error(self) -> KwtSMSError | None:
        """The batch's error as an exception object (None when the batch was sent): the one it
        ended on, or, for a batch read back from the ledger (which keeps only its code), one made
        from the code."""
        if self.error_code is None:
            return None
        if self.exception is not None and self.exception.code == self.error_code:
            return self.exception
        if self.state == UNCERTAIN or self.may_have_reached_server is not None:
            return KwtSMSNetworkError(
                self.error_description or "No usable answer.",
                may_have_reached_server=bool(self.may_have_reached_server),
                code=self.error_code,
            )
        return KwtSMSError(self.error_code, self.error_description)

    def summary(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "state": str(self.state),  # a plain string in XComs, whatever serialiser reads it
            "msg_id": self.msg_id,
            "numbers": len(self.numbers),
            "points": self.points_charged,
            "error_code": self.error_code,
            "attempted": self.attempted,
        }


@dataclass
class SendPlan:
    """Everything decided before the first request: who, what, how many pages, what it costs."""

    recipients: Recipients
    message: str  # cleaned
    info: MessageInfo
    sender: str
    test: bool
    batches: list[list[str]]
    estimate: int  # credits: valid numbers x pages
    removed_characters: int = 0  # emoji, invisible and control characters left out of the text
    replaced_characters: int = 0  # look-alikes sent in their GSM-7 form (smart encoding)
    credits_saved: int = 0  # what smart encoding saved: (pages as written - pages sent) x numbers

    @property
    def pages(self) -> int:
        return self.info.pages

    def requests_text(self) -> str:
        """How many requests (or e-mails) the send costs: "3 requests", and when the ``mobile``
        field's characters, not the 200 numbers, set the count, "3 requests (2,500 characters
        per request)"."""
        count = len(self.batches)
        text = f"{count} request{'s' * (count != 1)}"
        if count > -(-len(self.recipients.valid) // MAX_BATCH):
            text += f" ({MAX_MOBILE_CHARS:,} characters per request)"
        return text

    def describe(self) -> str:
        """One line for the task log: inputs, text, requests, the estimate, and what smart encoding
        saved. The one plan line of every channel and adapter."""
        r = self.recipients
        smart = (
            f"; smart encoding replaced {self.replaced_characters} character(s), saving "
            f"{self.credits_saved} credit(s)"
            if self.replaced_characters
            else ""
        )
        test = "; TEST MODE (queued, not delivered)" if self.test else ""
        removed = (
            f"; {self.removed_characters} emoji, invisible or control character(s) removed (the gateway "
            "would hold the message in its queue)"
            if self.removed_characters
            else ""
        )
        return (
            f"Plan: {r.total_inputs} inputs -> {len(r.valid)} valid, {len(r.invalid)} invalid, "
            f"{len(r.duplicates)} duplicates; {self.info.encoding}, {self.info.length} characters, "
            f"{self.pages} page(s); {self.requests_text()}; estimate {self.estimate} credits; "
            f"sender {self.sender}{test}{removed}{smart}."
        )


@dataclass
class SendResult:
    """What a send did, accounting for every input: sent, invalid, duplicate, failed, uncertain."""

    plan: SendPlan
    batches: list[BatchResult] = field(default_factory=list)
    dry_run: bool = False

    # -- totals ---------------------------------------------------------------------------
    @property
    def msg_ids(self) -> list[str]:
        return [b.msg_id for b in self.batches if b.state in (SENT, SKIPPED) and b.msg_id]

    @property
    def numbers_sent(self) -> int:
        return sum(b.count for b in self.batches)

    @property
    def points_charged(self) -> int:
        return sum(b.points_charged for b in self.batches if b.state in (SENT, SKIPPED))

    @property
    def gateway_dropped(self) -> int:
        """Numbers of accepted batches that the gateway left out (its count was lower).

        The gateway may accept a batch but skip numbers it finds invalid or uncovered, saying only
        how many it took; which ones is not in its answer.
        """
        return sum(
            max(0, len(b.numbers) - b.numbers_accepted)
            for b in self.batches
            if b.state == SENT and b.numbers_accepted is not None
        )

    @property
    def balance_after(self) -> float | None:
        """The balance the gateway reported after the last batch it accepted."""
        for batch in reversed(self.batches):
            if batch.state == SENT and batch.balance_after is not None:
                return batch.balance_after
        return None

    # -- per number -----------------------------------------------------------------------
    @property
    def sent(self) -> list[tuple[str, str | None]]:
        return [(n, b.msg_id) for b in self.batches if b.state in (SENT, SKIPPED) for n in b.numbers]

    @property
    def failed(self) -> list[tuple[str, str | None]]:
        return [(n, b.error_code) for b in self.batches if b.state == FAILED for n in b.numbers]

    @property
    def uncertain(self) -> list[str]:
        return [n for b in self.batches if b.state == UNCERTAIN for n in b.numbers]

    @property
    def ok(self) -> bool:
        """True when every valid number was sent (invalid and duplicate inputs do not count)."""
        return not self.dry_run and all(b.state in (SENT, SKIPPED) for b in self.batches)

    # -- errors ---------------------------------------------------------------------------
    @property
    def permanent_error(self) -> KwtSMSError | None:
        """The first error that no retry can fix (bad login, sender, balance, ...), if any.

        The Airflow operator turns it into ``AirflowFailException``.
        """
        for batch in self._attempted_failures():
            err = batch.error()
            if err is not None and err.permanent:
                return err
        return None

    @property
    def first_error(self) -> KwtSMSError | None:
        """The first failure or uncertainty, permanent or not."""
        for batch in self._attempted_failures():
            return batch.error()
        return None

    def _attempted_failures(self) -> Iterator[BatchResult]:
        return (b for b in self.batches if b.state in (FAILED, UNCERTAIN) and b.attempted)

    def raise_for_status(self) -> SendResult:
        """Raise the first permanent error, else the first other failure; return self when ok."""
        err = self.permanent_error or self.first_error
        if err is not None:
            raise err
        return self

    # -- summary --------------------------------------------------------------------------
    def to_dict(self, list_limit: int = DEFAULT_LIST_LIMIT) -> dict[str, Any]:
        """A JSON-serialisable summary (the operator's XCom).

        Counts are always exact. Sent numbers are counted, not listed (the msg-ids and the
        per-batch table say where they went); invalid, duplicate, failed and uncertain numbers
        are listed up to ``list_limit`` entries each, and ``truncated`` says when a list was cut.
        """
        recipients = self.plan.recipients
        failed = self.failed
        uncertain = self.uncertain
        not_attempted = sum(len(b.numbers) for b in self.batches if b.state == FAILED and not b.attempted)
        truncated = any(
            len(items) > list_limit
            for items in (recipients.invalid, recipients.duplicates, failed, uncertain)
        )
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "test": self.plan.test,
            "sender": self.plan.sender,
            "encoding": self.plan.info.encoding,
            "length": self.plan.info.length,
            "pages": self.plan.info.pages,
            "estimate": self.plan.estimate,
            "removed_characters": self.plan.removed_characters,
            "smart_encoding": {
                "replaced_characters": self.plan.replaced_characters,
                "credits_saved": self.plan.credits_saved,
            },
            "msg_ids": self.msg_ids,
            "numbers_sent": self.numbers_sent,
            "points_charged": self.points_charged,
            "balance_after": self.balance_after,
            "counts": {
                "inputs": recipients.total_inputs,
                "valid": len(recipients.valid),
                "invalid": len(recipients.invalid),
                "duplicates": len(recipients.duplicates),
                "sent": sum(len(b.numbers) for b in self.batches if b.state in (SENT, SKIPPED)),
                "failed": len(failed),
                "not_attempted": not_attempted,
                "uncertain": len(uncertain),
                "gateway_dropped": self.gateway_dropped,
            },
            "invalid": [{"input": i.input, "reason": i.reason} for i in recipients.invalid[:list_limit]],
            "duplicates": [
                {"input": d.input, "number": d.number} for d in recipients.duplicates[:list_limit]
            ],
            "failed": [{"number": n, "code": c} for n, c in failed[:list_limit]],
            "uncertain": uncertain[:list_limit],
            "truncated": truncated,
            "batches": [b.summary() for b in self.batches],
            "error": _error_dict(self.permanent_error or self.first_error),
        }


def _error_dict(err: KwtSMSError | None) -> dict[str, Any] | None:
    if err is None:
        return None
    out = {
        "code": err.code,
        "description": err.description,
        "action": err.action,
        "permanent": err.permanent,
        "retryable": err.retryable,
    }
    if isinstance(err, KwtSMSNetworkError):
        out["may_have_reached_server"] = err.may_have_reached_server
    return out
