"""Raw phone input -> normalised, validated, deduplicated recipients: the public phone API.

Numbers are judged by libphonenumber's metadata (the ``phonenumbers`` package), compiled once per
calling code in ``_numbering`` so that preparing a million numbers stays fast. ``phonenumbers`` is
imported on first use, never at import time.

Accepted: numbers the metadata classifies as mobile (or fixed-line-or-mobile, as in the USA) and,
unless ``strict=True``, numbers of a possible length that fit the country's numbering plan but that
the metadata cannot classify yet (new ranges: the gateway is the final judge). Kuwait (965) follows
the gateway's own rule instead (``_phone_verdict.kuwait_verdict``): 8 digits starting with 4, 5, 6
or 9, strict or not; 2... is a landline. Rejected, each with a
message naming the input and what to do: e-mail addresses, inputs without digits, too short or too
long, wrong length or unused range for the country, landlines and other non-mobile types, unknown
country codes.

This module is the API and its result types; the work is done behind it, one job per module:
``_phone_input`` reads the raw values into entries and keys, ``_phone_verdict`` judges one key,
``_phone_engine`` judges a whole list fast (with ``_pattern_depth``) and sorts it.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from itertools import repeat
from typing import Any

import airflow_provider_kwtsms.phone.numbering as nb
from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.phone.country_names import country_label as country_label  # re-exported
from airflow_provider_kwtsms.phone.engine import sort_inputs
from airflow_provider_kwtsms.phone.entries import (
    Refused,
    as_entry,
    bulk_entries,
    key_of,
    keys_of,
    single_entry,
    split_entries,
    stands_for_several,
)
from airflow_provider_kwtsms.phone.verdict import (  # MAX_DIGITS, MIN_DIGITS: re-exported
    EMPTY,
    EMPTY_MESSAGE,
    MAX_DIGITS,  # noqa: F401
    MIN_DIGITS,  # noqa: F401
    Home,
    Verdict,
    key_verdict,
    message,
)

__all__ = [
    "DuplicateInput",
    "InvalidInput",
    "PhoneCheck",
    "Recipients",
    "SuppressedInput",
    "normalize_phone",
    "number_of_each",
    "prepare_recipients",
    "resolve_country",
    "split_recipients",
    "validate_phone",
]

# The name a refused entry was pickled under before the split: old pickles still load.
_Refused = Refused


@dataclass(frozen=True)
class PhoneCheck:
    """One input's verdict: ``number`` is digits only, country code first (what would be sent)."""

    valid: bool
    number: str
    error: str | None


@dataclass(frozen=True, slots=True)
class InvalidInput:
    """An input that is not a number that can receive SMS, with the ``reason`` (what to fix)."""

    input: str
    reason: str


@dataclass(frozen=True, slots=True)
class DuplicateInput:
    """An input whose number was already given by an earlier input (``number`` is that number)."""

    input: str
    number: str


@dataclass(frozen=True, slots=True)
class SuppressedInput:
    """A valid input left out because its ``number`` is on the do-not-send list."""

    input: str
    number: str


@dataclass
class Recipients:
    """Every input sorted into exactly one list: valid unique numbers (first-seen order), invalid
    inputs with their reasons, duplicates, and those on the do-not-send list (``suppressed``: set
    by the planner, ``send.suppression``)."""

    valid: list[str]
    invalid: list[InvalidInput]
    duplicates: list[DuplicateInput]
    suppressed: list[SuppressedInput] = field(default_factory=list)

    @property
    def total_inputs(self) -> int:
        return len(self.valid) + len(self.invalid) + len(self.duplicates) + len(self.suppressed)


# --- default_country ----------------------------------------------------------------------------


def resolve_country(default_country: str | int | None) -> str | None:
    """The calling code of a country given as "KW", "kw", "965", "+965", "00965" or 965; None or
    blank gives None. ``KwtSMSInputError`` names a value that is not a country. The one reading of
    ``default_country`` for the connection, the operator, the notifier and the client."""
    home = _resolve_home(default_country)
    return None if home is None else home.cc


def _resolve_home(default_country: str | int | None) -> Home | None:
    """ "KW", "kw", "965", "+965", "00965" or 965 -> the country's calling code; None stays None."""
    if default_country is None:
        return None
    text = as_entry(default_country)
    if text.__class__ is Refused:
        raise KwtSMSInputError(
            f"default_country {str(text)!r} is not a country: give an ISO country code such as 'KW' "
            "or a calling code such as '965'."
        )
    text = text.strip()
    if not text:
        return None
    digits = text[1:] if text.startswith("+") else text
    cc: str | None
    if digits.isascii() and digits.isdigit():
        cc = digits.lstrip("0")
        code = nb.calling_code(cc) if cc else None
        if code is None or code.region_codes[0] == "001":
            raise KwtSMSInputError(
                f"default_country {default_country!r} is not a country calling code: give an ISO "
                "country code such as 'KW' or a calling code such as '965'."
            )
        region = code.region_codes[0]
    else:
        region = text.upper()
        cc = nb.region_calling_code(region) if len(region) == 2 and region.isalpha() else None
        if cc is None:
            raise KwtSMSInputError(
                f"default_country {default_country!r} is not a known country: give an ISO country "
                "code such as 'KW' or a calling code such as '965'."
            )
        code = nb.calling_code(cc)
    assert code is not None
    return Home(cc, region, max(code.possible_lengths))


def _check(text: str, home: Home | None, strict: bool) -> Verdict:
    if not text.strip():
        return EMPTY
    return key_verdict(key_of(text), home, strict)


# --- public API ---------------------------------------------------------------------------------


def validate_phone(
    raw: str | int, default_country: str | int | None = None, strict: bool = False
) -> PhoneCheck:
    """Validates one number: never raises for a bad number, only for a bad default_country."""
    home = _resolve_home(default_country)
    text = single_entry(raw)
    if text.__class__ is Refused:
        return PhoneCheck(False, "", text.reason)
    ok, number, tail = _check(text, home, strict)
    if ok:
        return PhoneCheck(True, number, None)
    assert tail is not None  # a verdict that rejects always carries its reason tail
    return PhoneCheck(False, number, message(text.strip(), tail))


def normalize_phone(raw: str | int, default_country: str | int | None = None) -> str:
    """Digits only, country code first: "+965 9876-5432", "٩٦٥٩٨٧٦٥٤٣٢", "0096598765432" -> "96598765432".

    With ``default_country`` a local number gains its country code ("98765432" -> "96598765432").
    It does not reject anything: an input without digits gives "", and ``validate_phone`` says
    whether the result is a number that can receive SMS.
    """
    home = _resolve_home(default_country)
    text = single_entry(raw)
    return "" if text.__class__ is Refused else _check(text, home, False)[1]


def split_recipients(value: Any) -> list[str]:
    """Raw inputs as a list of strings, one per recipient.

    A string (or bytes) is split on commas, semicolons and newlines; separators and white space at
    its two ends are ignored (a trailing comma, a final newline), but an empty entry between two
    separators ("a,,b") is kept as "" so that it is reported instead of silently lost. A list,
    tuple, set or other iterable gives its items, flattened at any depth (strings among them are
    split the same way). Any other value is one entry: a whole number its digits, None an empty
    entry (""), an object its str(). A value that cannot be a phone number whatever its digits
    (a fractional or NaN float, an int of hundreds of digits, a dict, a list that holds itself)
    is one entry that prepare_recipients and validate_phone reject with the reason.
    """
    return split_entries(value)[0]


def prepare_recipients(
    raws: Iterable[Any] | str | int | None, default_country: str | int | None = None, strict: bool = False
) -> Recipients:
    """Valid unique numbers in first-seen order, every invalid input with its reason, the duplicates.

    Every entry of ``split_recipients(raws)`` lands in exactly one of the three lists.
    """
    home = _resolve_home(default_country)
    items, joined, refused = bulk_entries(raws)
    # A big list allocates millions of small objects and no cycles: the cyclic garbage collector
    # would only re-scan them again and again, so it pauses meanwhile.
    pause_gc = len(items) > 10_000 and gc.isenabled()
    if pause_gc:
        gc.disable()
    try:
        keys = keys_of(items, joined)
        for i in refused:
            keys[i] = "@"  # judged invalid whatever its digits; its own reason replaces the verdict's
        recipients = _recipients(*sort_inputs(items, keys, home, strict))
        if refused:
            recipients.invalid = [
                InvalidInput(str(bad.input), bad.input.reason) if bad.input.__class__ is Refused else bad
                for bad in recipients.invalid
            ]
        return recipients
    finally:
        if pause_gc:
            gc.enable()


def number_of_each(
    raws: list[Any], default_country: str | int | None = None, strict: bool = False
) -> tuple[list[str], dict[int, str]]:
    """One verdict per entry, in order, nothing merged: the number each entry is (``""`` when
    invalid) and, by position, the reason of each invalid one. Per-recipient rows use it: a number
    given in two rows is two entries here (with two texts it is sent twice; the caller decides).

    Each entry is one value (a row's ``mobile``): a list, or text holding a separator (comma,
    semicolon, line break), is refused as several numbers. Each distinct key is judged once, by
    the same engine as ``prepare_recipients``, so a million entries stay fast.
    """
    home = _resolve_home(default_country)
    items = list(map(single_entry, raws))
    keys = keys_of([_ONE_LINE if stands_for_several(t) else t for t in items])
    refused: dict[int, str] = {}
    for i, text in enumerate(items):
        if text.__class__ is Refused:
            refused[i] = text.reason
        elif stands_for_several(text):
            refused[i] = (
                f"{text.strip()!r} holds several values (a comma, semicolon or line break): give one "
                "phone number per row."
            )
    for i in refused:
        keys[i] = "@"
    distinct = list(dict.fromkeys(keys))
    # Each distinct key lands in exactly one list, in order: walking them back gives its verdict.
    valid, bad_keys, tails, dup_keys, dup_numbers = sort_inputs(distinct, distinct, home, strict)
    tail_of = dict(zip(bad_keys, tails, strict=True))
    repeated = dict(zip(dup_keys, dup_numbers, strict=True))
    fresh = iter(valid)
    number_of = {
        key: "" if key in tail_of else repeated[key] if key in repeated else next(fresh) for key in distinct
    }
    numbers = list(map(number_of.__getitem__, keys))
    reasons: dict[int, str] = {}
    for i, number in enumerate(numbers):
        if not number:
            shown = items[i].strip()
            reasons[i] = refused.get(i) or (repr(shown) + tail_of[keys[i]] if shown else EMPTY_MESSAGE)
    return numbers, reasons


_ONE_LINE = "@"  # the key text of an entry refused before judging (keys_of needs one line each)


def _recipients(
    valid: list[str], bad_inputs: list[str], tails: list[str], dup_inputs: list[str], dup_numbers: list[str]
) -> Recipients:
    """The result, with each invalid input's message: the input as given, quoted, then its tail."""
    invalid: list[InvalidInput] = []
    if bad_inputs:
        # Built by C-level passes: a million inputs may be invalid.
        shown = list(map(str.strip, bad_inputs))
        reasons = list(map(str.__add__, map(repr, shown), tails))
        if "" in shown:
            for i, text in enumerate(shown):
                if not text:
                    reasons[i] = EMPTY_MESSAGE
        invalid = _frozen(InvalidInput, bad_inputs, reasons)
    return Recipients(valid, invalid, _frozen(DuplicateInput, dup_inputs, dup_numbers))


def _frozen(cls: type, firsts: list[str], seconds: list[str]) -> list[Any]:
    """[cls(a, b) for a, b in zip(firsts, seconds)] for a frozen two-field slots dataclass, at C speed.

    A frozen dataclass's __init__ sets each field through object.__setattr__ (about 1 µs per
    object here); the slots' own descriptors set them directly, as that __init__ would.
    """
    objects: list[Any] = list(map(object.__new__, repeat(cls, len(firsts))))
    first, second = (getattr(cls, f.name).__set__ for f in fields(cls))
    deque(map(first, objects, firsts), 0)
    deque(map(second, objects, seconds), 0)
    return objects
