"""Planning a send: who, what text, how many pages, which batches, what it costs. No request.

Pure: the HTTP client and the SMTP channel both plan through ``build_plan`` (one text) or
``send.rows.build_rows_plan`` (a text per recipient), which meet in ``assemble``: a plan is texts,
each with its numbers, cut into requests of one text each. The same inputs give the same plan
whichever channel sends it, and ``check_credits`` is the one credit cap.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from itertools import accumulate
from operator import add
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms.coerce import as_text
from airflow_provider_kwtsms.constants import DEFAULT_MAX_PAGES, DEFAULT_SENDER, MAX_BATCH, MAX_MOBILE_CHARS
from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.field_limits import check_field, check_max_pages
from airflow_provider_kwtsms.send.results import RowIndex, SendPlan, TextGroups

if TYPE_CHECKING:
    from airflow_provider_kwtsms.phone.recipients import Recipients
    from airflow_provider_kwtsms.text.message import MessageInfo


@dataclass(frozen=True)
class PlanOptions:
    """How a send is planned: the one value for the settings that a channel's ``plan_send`` and
    ``send``, ``build_plan``, the operator and the notifier all take.

    :param sender: the sender ID (registered on the account).
    :param test: test mode: queued by kwtSMS, not delivered.
    :param default_country: the country of numbers written without one (name, ISO code or calling code).
    :param strict: refuse numbers that are valid but not mobiles, instead of sending to them.
    :param max_pages: the longest message allowed, in pages.
    :param smart_encoding: send GSM-7 look-alikes as their GSM-7 forms (docs/message-text.md).
    """

    sender: str = DEFAULT_SENDER
    test: bool = False
    default_country: str | int | None = None
    strict: bool = False
    max_pages: int = DEFAULT_MAX_PAGES
    smart_encoding: bool = True

    def override(self, **values: Any) -> PlanOptions:
        """These options with the given values in place of theirs; a value of None keeps theirs."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise KwtSMSInputError(
                f"unknown plan option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        given = {name: value for name, value in values.items() if value is not None}
        if "test" in given:
            given["test"] = bool(given["test"])
        return replace(self, **given)


@dataclass(frozen=True, slots=True)
class PlannedText:
    """One text as it will be sent: cleaned, smart-encoded, measured, with what that changed."""

    text: str
    info: MessageInfo
    removed: int = 0  # characters cleaning left out
    replaced: int = 0  # look-alikes smart encoding replaced
    pages_saved: int = 0  # pages per number smart encoding saved


def prepare_text(message: Any, options: PlanOptions) -> PlannedText:
    """Clean the text (and, with ``options.smart_encoding``, keep it GSM-7 where a look-alike
    allows) and measure it. ``KwtSMSInputError`` for a text that cannot be sent: not text, empty
    after cleaning, or over the page limit (the message says which and what to do)."""
    from airflow_provider_kwtsms.text.message import clean_text, measure_message
    from airflow_provider_kwtsms.text.smart_encoding import SmartText, smart_encode

    if not isinstance(message, str):
        raise KwtSMSInputError(f"message must be text (str), got {type(message).__name__}")
    cleaning = clean_text(message)
    cleaned = cleaning.text
    if not cleaned:
        raise KwtSMSInputError(
            "message is empty after cleaning (emoji, invisible characters and HTML tags are "
            "removed because the gateway refuses or mangles them): give it some text"
        )
    smart = smart_encode(cleaned) if options.smart_encoding else SmartText(cleaned)
    info = measure_message(smart.text, check_max_pages(options.max_pages))
    if info.over_limit:
        unit = "characters" if info.encoding == "GSM-7" else "UTF-16 units"
        raise KwtSMSInputError(
            f"message is too long: {info.pages} pages ({info.length} {unit} as {info.encoding}), "
            f"the limit is {info.max_pages} pages; shorten it (or use message.trim_to_pages)"
        )
    return PlannedText(smart.text, info, cleaning.removed, smart.replaced, smart.pages_saved)


def check_sender(options: PlanOptions) -> None:
    """The sender ID: text, within the gateway's field size (``KwtSMSInputError`` otherwise)."""
    as_text(options.sender, "sender", "a sender ID registered on the account")
    check_field("sender", options.sender)


def build_plan(
    mobile: Any, message: str, options: PlanOptions | None = None, *, do_not_send: Any = None
) -> SendPlan:
    """Sort the recipients, clean the text (and, with ``options.smart_encoding``, keep it GSM-7
    where a look-alike allows), measure it and cut the batches: the one-group case of
    ``assemble`` (per-recipient rows are ``send.rows.build_rows_plan``).

    ``do_not_send``: numbers (a list, a string, a ``DoNotSend``) left out and counted as
    suppressed (``send.suppression``).

    Raises ``KwtSMSInputError`` when nothing could be sent: an empty or over-long message, a bad
    sender, or no valid number."""
    from airflow_provider_kwtsms.phone.recipients import prepare_recipients
    from airflow_provider_kwtsms.send.suppression import do_not_send_list, split_suppressed

    options = options or PlanOptions()
    text = prepare_text(message, options)
    check_sender(options)
    recipients = prepare_recipients(mobile, default_country=options.default_country, strict=options.strict)
    blocked = do_not_send_list(do_not_send, options.default_country)
    if blocked:
        recipients.valid, recipients.suppressed = split_suppressed(recipients.valid, None, blocked)
    if not recipients.valid:
        raise no_valid_numbers(recipients)
    return assemble(recipients, [text], [len(recipients.valid)], options, unusable=blocked.unusable)


def assemble(
    recipients: Recipients,
    texts: list[PlannedText],
    sizes: Sequence[int],
    options: PlanOptions,
    *,
    rows: RowIndex | None = None,
    unusable: int = 0,
) -> SendPlan:
    """The plan of ``texts``: text ``g`` goes to the next ``sizes[g]`` numbers of
    ``recipients.valid`` (laid out text by text). Each text's numbers are cut into the fewest
    requests the gateway's limits allow (``split_batches``): one request carries one text, so a
    plan of several texts needs at least one request per text. The estimate is each text's pages
    times its numbers. One group is a plan of one text (``SendPlan.groups`` None)."""
    valid = recipients.valid
    batches: list[list[str]] = []
    starts = array("q")
    estimate = saved = 0
    offset = 0
    for text, size in zip(texts, sizes, strict=True):
        starts.append(len(batches))
        batches.extend(split_batches(valid[offset : offset + size]))
        offset += size
        estimate += size * text.info.pages
        saved += size * text.pages_saved
    starts.append(len(batches))
    longest = max(range(len(texts)), key=lambda g: texts[g].info.pages) if texts else 0
    groups = None
    if len(texts) > 1:
        groups = TextGroups(
            texts=[t.text for t in texts],
            infos=[t.info for t in texts],
            starts=starts,
            sizes=array("q", sizes),
        )
    return SendPlan(
        recipients=recipients,
        message=texts[longest].text,
        info=texts[longest].info,
        sender=options.sender,
        test=options.test,
        batches=batches,
        estimate=estimate,
        removed_characters=sum(t.removed for t in texts),
        replaced_characters=sum(t.replaced for t in texts),
        credits_saved=saved,
        groups=groups,
        rows=rows,
        do_not_send_unusable=unusable,
    )


def split_batches(numbers: list[str]) -> list[list[str]]:
    """``numbers`` in order, cut into requests of at most ``MAX_BATCH`` numbers whose ``mobile``
    field (the numbers joined by commas) holds at most ``MAX_MOBILE_CHARS`` characters.

    200 numbers of up to 11 digits always fit (2,399 characters); longer ones (twelve-digit UAE
    numbers: 2,599) end a request early. Linear, at C speed: a million numbers take milliseconds.
    """
    total = len(numbers)
    if not total:
        return []
    if max(map(len, numbers)) * MAX_BATCH + MAX_BATCH - 1 <= MAX_MOBILE_CHARS:
        return [numbers[i : i + MAX_BATCH] for i in range(0, total, MAX_BATCH)]
    # width[i]: the characters of numbers[:i] plus i, so numbers[s:e] joined by commas takes
    # width[e] - width[s] - 1 characters; width only grows, so bisect finds each cut.
    width = list(map(add, accumulate(map(len, numbers), initial=0), range(total + 1)))
    batches: list[list[str]] = []
    start = 0
    while start < total:
        stop = bisect_right(width, width[start] + MAX_MOBILE_CHARS + 1, start + 1) - 1
        stop = max(start + 1, min(stop, start + MAX_BATCH))
        batches.append(numbers[start:stop])
        start = stop
    return batches


def check_credits(plan: SendPlan, max_credits: int | None) -> None:
    """Refuse a plan whose estimate is above ``max_credits`` (None: no limit)."""
    if max_credits is None:
        return
    if plan.estimate > max_credits:
        how = (
            f"{len(plan.recipients.valid)} numbers x {plan.pages} pages"
            if plan.groups is None
            else f"{len(plan.recipients.valid)} numbers in {len(plan.groups)} texts of up to "
            f"{plan.pages} pages"
        )
        raise KwtSMSInputError(
            f"Nothing was sent: this send needs {plan.estimate} credits ({how}), above "
            f"max_credits={max_credits}; raise max_credits, shorten the message or send to fewer numbers"
        )


def no_valid_numbers(recipients: Recipients) -> KwtSMSInputError:
    """The error for a send without one valid number; it carries the sorted ``recipients``."""
    if recipients.total_inputs == 0:
        exc = KwtSMSInputError("no recipients given: pass one number, a comma-separated string or a list")
    else:
        reasons = "; ".join(f"{i.input!r}: {i.reason}" for i in recipients.invalid[:5])
        more = f" (and {len(recipients.invalid) - 5} more)" if len(recipients.invalid) > 5 else ""
        exc = KwtSMSInputError(
            f"no valid phone number among {recipients.total_inputs} inputs: {reasons}{more}. Give "
            f"numbers with their country code (e.g. 96598765432) or set default_country"
        )
    exc.recipients = recipients  # type: ignore[attr-defined]  # so callers can still report each input
    return exc
