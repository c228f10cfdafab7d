"""The typed answers of the kwtSMS client: plain dataclasses, no HTTP and no Airflow.

A bulk send is described twice: the ``SendPlan`` (what will be sent: the sorted recipients,
the cleaned text of each group, its pages, the batches and the credit estimate) and the
``SendResult`` (what happened to each batch). Together they account for every recipient given:
sent, invalid, duplicate, suppressed (do-not-send), failed or uncertain. A plan from
per-recipient rows (``send.rows``) also knows each entry's row (``RowIndex``), so the summary
accounts for every row.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
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


@dataclass(frozen=True)
class TextGroups:
    """The texts of a plan that sends more than one (per-recipient rows): group ``g``'s text
    ``texts[g]`` (measured: ``infos[g]``) goes to its ``sizes[g]`` numbers, in the batches
    ``starts[g]`` up to ``starts[g + 1]`` (the last entry is the batch count). Compact: a million
    groups are a few arrays and one shared ``MessageInfo`` per distinct measure."""

    texts: list[str]
    infos: list[MessageInfo]
    starts: array[int]
    sizes: array[int]

    def group_of(self, batch: int) -> int:
        """The group of batch index ``batch`` (a bisection: no per-batch table)."""
        return bisect_right(self.starts, batch) - 1

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class RowIndex:
    """The row (0-based, as given) of each entry of a plan from rows: ``valid`` parallel to
    ``recipients.valid`` (plan order), the others to ``recipients.invalid``, ``duplicates`` and
    ``suppressed``."""

    rows: int
    valid: array[int]
    invalid: array[int]
    duplicates: array[int]
    suppressed: array[int]


@dataclass
class SendPlan:
    """Everything decided before the first request: who, what, how many pages, what it costs.

    One text (``message``, ``info``) is the one-group plan: ``groups`` is None and every batch
    carries ``message``. A plan of several texts has ``groups`` (each batch's text: ``text_of``);
    its ``message`` and ``info`` are then those of its longest text (most pages)."""

    recipients: Recipients
    message: str  # cleaned
    info: MessageInfo
    sender: str
    test: bool
    batches: list[list[str]]
    estimate: int  # credits: valid numbers x pages (of each one's text)
    removed_characters: int = 0  # emoji, invisible and control characters left out of the text(s)
    replaced_characters: int = 0  # look-alikes sent in their GSM-7 form (smart encoding)
    credits_saved: int = 0  # what smart encoding saved: (pages as written - pages sent) x numbers
    groups: TextGroups | None = None  # several texts: which batches carry which
    rows: RowIndex | None = None  # planned from rows: the row of every entry
    do_not_send_unusable: int = 0  # entries of the do-not-send list that are no number

    @property
    def pages(self) -> int:
        """The pages of the text (of the longest one, for a plan of several texts)."""
        return self.info.pages

    @property
    def text_count(self) -> int:
        return 1 if self.groups is None else len(self.groups)

    def text_of(self, batch: int) -> str:
        """The text batch index ``batch`` sends."""
        return self.message if self.groups is None else self.groups.texts[self.groups.group_of(batch)]

    def pages_of(self, batch: int) -> int:
        """The pages of the text batch index ``batch`` sends (its charge per number)."""
        return self.pages if self.groups is None else self.groups.infos[self.groups.group_of(batch)].pages

    def texts(self) -> Sequence[str]:
        """Every text of the plan, one per group, in batch order."""
        return [self.message] if self.groups is None else self.groups.texts

    def requests_text(self) -> str:
        """How many requests (or e-mails) the send costs: "3 requests", and when the ``mobile``
        field's characters, not the 200 numbers, set the count, "3 requests (2,500 characters
        per request)"."""
        count = len(self.batches)
        text = f"{count} request{'s' * (count != 1)}"
        fewest = (
            -(-len(self.recipients.valid) // MAX_BATCH)
            if self.groups is None
            else sum(-(-size // MAX_BATCH) for size in self.groups.sizes)
        )
        if count > fewest:
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
        suppressed = getattr(r, "suppressed", ())
        held = f", {len(suppressed)} on the do-not-send list" if suppressed else ""
        odd = self.do_not_send_unusable
        unusable = (
            f"; {odd} do-not-send entr{'y is' if odd == 1 else 'ies are'} no phone number (matching nothing)"
            if self.do_not_send_unusable
            else ""
        )
        if self.groups is None:
            inputs = f"{r.total_inputs} inputs -> {len(r.valid)} valid"
            text = f"{self.info.encoding}, {self.info.length} characters, {self.pages} page(s)"
        else:
            rows = self.rows.rows if self.rows is not None else r.total_inputs
            inputs = f"{rows} rows -> {len(r.valid)} to send"
            low = min(info.pages for info in set(self.groups.infos))
            pages = f"{low}-{self.pages}" if low != self.pages else f"{self.pages}"
            text = f"{len(self.groups)} distinct texts, {pages} page(s) each"
        return (
            f"Plan: {inputs}, {len(r.invalid)} invalid, {len(r.duplicates)} duplicates{held}; "
            f"{text}; {self.requests_text()}; estimate {self.estimate} credits; "
            f"sender {self.sender}{test}{removed}{smart}{unusable}."
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
        per-batch table say where they went); invalid, duplicate, suppressed, failed and uncertain
        numbers are listed up to ``list_limit`` entries each, and ``truncated`` says when a list was
        cut. A plan from rows adds ``rows`` (every row counted once by what became of it) and the
        row of each listed entry."""
        plan = self.plan
        recipients = plan.recipients
        suppressed = list(getattr(recipients, "suppressed", ()))
        failed = self.failed
        uncertain = self.uncertain
        not_attempted = sum(len(b.numbers) for b in self.batches if b.state == FAILED and not b.attempted)
        truncated = any(
            len(items) > list_limit
            for items in (recipients.invalid, recipients.duplicates, suppressed, failed, uncertain)
        )
        rows = plan.rows
        invalid = [{"input": i.input, "reason": i.reason} for i in recipients.invalid[:list_limit]]
        duplicates = [{"input": d.input, "number": d.number} for d in recipients.duplicates[:list_limit]]
        held = [{"input": x.input, "number": x.number} for x in suppressed[:list_limit]]
        failed_list: list[dict[str, Any]] = [{"number": n, "code": c} for n, c in failed[:list_limit]]
        uncertain_list: list[Any] = uncertain[:list_limit]
        if rows is not None:
            for entries, where in (
                (invalid, rows.invalid),
                (duplicates, rows.duplicates),
                (held, rows.suppressed),
            ):
                for entry, row in zip(entries, where, strict=False):
                    entry["row"] = row
            failed_list, uncertain_list = self._rows_of_batches(rows, list_limit)
        out: dict[str, Any] = {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "test": plan.test,
            "sender": plan.sender,
            "texts": plan.text_count,
            "encoding": plan.info.encoding,
            "length": plan.info.length,
            "pages": plan.info.pages,
            "estimate": plan.estimate,
            "removed_characters": plan.removed_characters,
            "smart_encoding": {
                "replaced_characters": plan.replaced_characters,
                "credits_saved": plan.credits_saved,
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
                "suppressed": len(suppressed),
                "sent": sum(len(b.numbers) for b in self.batches if b.state in (SENT, SKIPPED)),
                "failed": len(failed),
                "not_attempted": not_attempted,
                "uncertain": len(uncertain),
                "gateway_dropped": self.gateway_dropped,
            },
            "invalid": invalid,
            "duplicates": duplicates,
            "suppressed": held,
            "failed": failed_list,
            "uncertain": uncertain_list,
            "truncated": truncated,
            "batches": [b.summary() for b in self.batches],
            "error": _error_dict(self.permanent_error or self.first_error),
        }
        if rows is not None:
            counts: dict[str, int] = out["counts"]
            out["rows"] = {
                "total": rows.rows,
                "sent": counts["sent"],
                "invalid": counts["invalid"],
                "duplicate": counts["duplicates"],
                "suppressed": counts["suppressed"],
                "failed": counts["failed"],
                "uncertain": counts["uncertain"],
                # not sent yet: a dry run, or batches a stop or a closed window left
                "pending": rows.rows
                - counts["sent"]
                - counts["invalid"]
                - counts["duplicates"]
                - counts["suppressed"]
                - counts["failed"]
                - counts["uncertain"],
            }
        return out

    def _rows_of_batches(self, rows: RowIndex, limit: int) -> tuple[list[dict[str, Any]], list[Any]]:
        """The failed and the uncertain entries of a plan from rows, each with its row: a batch's
        numbers are the plan's valid entries from its offset on."""
        failed: list[dict[str, Any]] = []
        uncertain: list[Any] = []
        offset = 0
        offsets = []
        for numbers in self.plan.batches:
            offsets.append(offset)
            offset += len(numbers)
        for batch in self.batches:
            if batch.state not in (FAILED, UNCERTAIN):
                continue
            start = offsets[batch.index]
            for k, number in enumerate(batch.numbers):
                row = rows.valid[start + k]
                if batch.state == FAILED and len(failed) < limit:
                    failed.append({"number": number, "code": batch.error_code, "row": row})
                elif batch.state == UNCERTAIN and len(uncertain) < limit:
                    uncertain.append({"number": number, "row": row})
        return failed, uncertain


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
