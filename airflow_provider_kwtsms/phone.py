"""Raw phone input -> normalised, validated, deduplicated recipients.

Numbers are judged by libphonenumber's metadata (the ``phonenumbers`` package), compiled once per
calling code in ``_numbering`` so that preparing a million numbers stays fast. ``phonenumbers`` is
imported on first use, never at import time.

Accepted: numbers the metadata classifies as mobile (or fixed-line-or-mobile, as in the USA) and,
unless ``strict=True``, numbers of a possible length that fit the country's numbering plan but that
the metadata cannot classify yet (new ranges: the gateway is the final judge). Rejected, each with a
message naming the input and what to do: e-mail addresses, inputs without digits, too short or too
long, wrong length or unused range for the country, landlines and other non-mobile types, unknown
country codes.
"""

from __future__ import annotations

import gc
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from airflow_provider_kwtsms import _numbering as nb
from airflow_provider_kwtsms._country_names import country_label
from airflow_provider_kwtsms.errors import KwtSMSInputError

__all__ = [
    "DuplicateInput",
    "InvalidInput",
    "PhoneCheck",
    "Recipients",
    "normalize_phone",
    "prepare_recipients",
    "split_recipients",
    "validate_phone",
]

# E.164: at most 15 digits; libphonenumber's shortest mobile number (country code included) has 7.
MIN_DIGITS = 7
MAX_DIGITS = 15

# Inputs are first reduced to a "key": their digits (made Latin), "+" and "@", nothing else.
_TO_LATIN = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹０１２３４５６７８９＋＠", "0123456789" * 3 + "+@")
_NOT_KEPT = re.compile(r"[^0-9+@]+")
_OTHER_DIGIT = re.compile(r"\d")  # any Unicode decimal digit still left after the table above
_KEPT_BYTES = b"0123456789+@\n"
_DROPPED_BYTES = bytes(i for i in range(256) if i not in _KEPT_BYTES)
_SEPARATORS = re.compile(r"[,;\r\n]")
# One separator: a comma or semicolon with any white space (newlines too) around it, or a run of
# line breaks. "a;\nb" and "a\n\nb" are two entries; "a,,b" keeps its empty middle entry.
_SPLIT = re.compile(r"\s*[,;]\s*|\s*[\r\n]\s*")
_BLANK_ENDS = " \t\r\n\f\v,;"

_ACCEPTED_TYPES = frozenset((nb.MOBILE, nb.FIXED_LINE_OR_MOBILE))
_TYPE_WORDS = {
    "PREMIUM_RATE": "premium-rate", "TOLL_FREE": "toll-free", "SHARED_COST": "shared-cost",
    "VOIP": "VoIP", "PERSONAL_NUMBER": "personal (follow-me)", "PAGER": "pager",
    "UAN": "universal access (UAN)", "VOICEMAIL": "voicemail",
}
_LOCAL_HINT = (" If it is a local number, add its country code (e.g. 96598765432 for Kuwait) "
               "or set default_country.")


@dataclass(frozen=True)
class PhoneCheck:
    """One input's verdict: ``number`` is digits only, country code first (what would be sent)."""

    valid: bool
    number: str
    error: str | None


@dataclass(frozen=True)
class InvalidInput:
    input: str
    reason: str


@dataclass(frozen=True)
class DuplicateInput:
    """An input whose number was already given by an earlier input (``number`` is that number)."""

    input: str
    number: str


@dataclass
class Recipients:
    valid: list[str]
    invalid: list[InvalidInput]
    duplicates: list[DuplicateInput]

    @property
    def total_inputs(self) -> int:
        return len(self.valid) + len(self.invalid) + len(self.duplicates)


# --- default_country ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Home:
    cc: str
    region: str
    max_national: int  # the longest national number of the country (trunk prefix not counted)


def _resolve_home(default_country: str | int | None) -> _Home | None:
    """"KW", "kw", "965", "+965", "00965" or 965 -> the country's calling code; None stays None."""
    if default_country is None:
        return None
    text = str(default_country).strip()
    if not text:
        return None
    digits = text[1:] if text.startswith("+") else text
    if digits.isascii() and digits.isdigit():
        cc = digits.lstrip("0")
        code = nb.calling_code(cc) if cc else None
        if code is None or code.region_codes[0] == "001":
            raise KwtSMSInputError(
                f"default_country {default_country!r} is not a country calling code: give an ISO "
                "country code such as 'KW' or a calling code such as '965'.")
        region = code.region_codes[0]
    else:
        region = text.upper()
        cc = nb.region_calling_code(region) if len(region) == 2 and region.isalpha() else None
        if cc is None:
            raise KwtSMSInputError(
                f"default_country {default_country!r} is not a known country: give an ISO country "
                "code such as 'KW' or a calling code such as '965'.")
        code = nb.calling_code(cc)
    assert code is not None
    return _Home(cc, region, max(code.possible_lengths))


# --- reading the digits -------------------------------------------------------------------------


def _key(text: str) -> str:
    """"+965 9876-5432" -> "+96598765432"; Arabic-Indic, Persian and other digits made Latin."""
    if not text.isascii():
        text = text.translate(_TO_LATIN)
        if not text.isascii():
            text = _OTHER_DIGIT.sub(lambda m: str(unicodedata.digit(m.group(), 0)), text)
    return _NOT_KEPT.sub("", text)


def _keys(items: list[str]) -> list[str]:
    """_key of every item at C speed: one pass over the joined bytes instead of a regex per item.

    Exact only for ASCII items (non-ASCII bytes are simply dropped); the caller recomputes
    non-ASCII items with _key. Items never contain a newline (split_recipients splits on them).
    """
    if not items:
        return []
    joined = "\n".join(items).encode("utf-8", "surrogatepass")
    return joined.translate(None, _DROPPED_BYTES).decode("ascii").split("\n")


# --- judging ------------------------------------------------------------------------------------
# A verdict is (ok, number, reason template); templates take the input as {0!r} so that one
# verdict serves every input with the same digits.

_Verdict = tuple[bool, str, str | None]


@lru_cache(maxsize=4096)
def _reason(what: str, cc: str = "", region: str | None = None, n: int = 0, head: str = "") -> str:
    """The reason template (input as {0!r}) for one kind of rejection; cached, as bulk lists repeat them."""
    place = country_label(region, cc) if cc else ""
    code = nb.calling_code(cc) if cc else None
    if what == "short":
        return (f"{{0!r}} is too short to be a phone number ({n} digit{'s' * (n != 1)}; "
                f"a number with its country code has at least {MIN_DIGITS}).")
    if what == "long":
        return (f"{{0!r}} is too long to be a phone number ({n} digits; at most {MAX_DIGITS} with "
                "the country code): check for two numbers run together.")
    if what == "code":
        return (f"{{0!r}} starts with no known country calling code ({head}...): give the number "
                "with its country code, e.g. 96598765432.")
    if what == "length" and code is not None:
        expected = " or ".join(str(x) for x in code.possible_lengths)
        return f"{{0!r}} has the wrong length for {place}: {n} digits after +{cc}, expected {expected}."
    if what == "mobile-length" and code is not None:
        expected = " or ".join(str(x) for x in code.mobile_lengths)
        return (f"{{0!r}} has the wrong length for a mobile number in {place}: {n} digits after "
                f"+{cc}, mobile numbers there have {expected}.")
    if what == "range":
        return f"{{0!r}} is not in a number range used in {place}: check the digits."
    if what == "strict":
        return (f"{{0!r}} fits the numbering plan of {place} but is not a known mobile range in "
                "libphonenumber's metadata (rejected because strict=True).")
    if what == nb.FIXED_LINE:
        return (f"{{0!r}} is a landline (fixed line) in {place}: landlines cannot receive SMS; "
                "give a mobile number.")
    return (f"{{0!r}} is a {_TYPE_WORDS.get(what, what)} number in {place}, not a mobile: it cannot "
            "receive SMS; give a mobile number.")


def _judge(digits: str, strict: bool) -> _Verdict:
    """The verdict on an international number given as digits (no + or 00)."""
    n = len(digits)
    if n < MIN_DIGITS:
        return False, digits, _reason("short", n=n)
    if n > MAX_DIGITS:
        return False, digits, _reason("long", n=n)
    cc = (nb._prefixes or nb.prefix_table()).get(digits[:3])
    code = (nb._codes.get(cc) or nb.calling_code(cc)) if cc else None
    if code is None:
        return False, digits, _reason("code", head=digits[:3])
    kind, region, national = code.classify(digits[len(cc):])  # type: ignore[arg-type]
    if kind in _ACCEPTED_TYPES:
        return True, cc + national, None  # type: ignore[operator]
    return _rejected(code, cc, kind, region, national, strict)  # type: ignore[arg-type]


def _rejected(code: nb.CallingCode, cc: str, kind: str, region: str | None, national: str,
              strict: bool) -> _Verdict:
    number = cc + national
    if kind != nb.UNKNOWN:
        return False, number, _reason(kind, cc, region)
    if national.startswith("0") and len(national) > 1:
        # A trunk 0 kept after the country code (+965 0 98765432): retry without it.
        retry = _judge(cc + national.lstrip("0"), strict)
        if retry[0]:
            return retry
    main = code.region_codes[0]
    n = len(national)
    if code.test_length(national) != nb.IS_POSSIBLE:
        return False, number, _reason("length", cc, main, n)
    if n not in code.mobile_lengths:
        # Possible for some service, never for a mobile: most often a local number read as
        # international (98765432 read as +98 765432 in Iran).
        return False, number, _reason("mobile-length", cc, main, n)
    if not code.matches_general(national):
        return False, number, _reason("range", cc, main)
    if strict:
        return False, number, _reason("strict", cc, main)
    return True, number, None


def _judge_input(digits: str, explicit: bool, home: _Home | None, strict: bool) -> _Verdict:
    """Chooses between the international and (with default_country) the local reading."""
    if explicit or home is None:
        verdict = _judge(digits.lstrip("0"), strict)
        if not verdict[0] and not explicit and verdict[2] is not None and len(digits) <= 10:
            return verdict[0], verdict[1], verdict[2] + _LOCAL_HINT
        return verdict
    code = nb.calling_code(home.cc)
    assert code is not None
    national = code.national_number(digits) if digits.startswith("0") else digits
    local = _judge(home.cc + national, strict)
    if local[0] or digits.startswith("0"):
        return local
    international = _judge(digits, strict)
    if international[0]:
        return international
    return local if len(digits) <= home.max_national else international


_EMPTY: _Verdict = (False, "", "empty entry: no phone number was given here "
                             "(did a template value render empty?).")
_EMAIL: _Verdict = (False, "", "{0!r} is an e-mail address, not a phone number: give the mobile "
                               "number instead.")
_NO_DIGITS: _Verdict = (False, "", "{0!r} has no digits: give a mobile number with its country code, "
                                   "e.g. 96598765432.")


def _verdict(key: str, home: _Home | None, strict: bool) -> _Verdict:
    """The verdict for an input reduced to its key (see _key); a key without digits gives _NO_DIGITS."""
    if "@" in key:
        return _EMAIL
    explicit = key.startswith("+")
    digits = key.replace("+", "") if "+" in key else key
    if digits.startswith("00"):
        explicit = True
    if not digits.strip("0"):
        return _NO_DIGITS
    return _judge_input(digits, explicit, home, strict)


def _fast_verdict(key: str, strict: bool) -> _Verdict:
    """_verdict without default_country, flattened for bulk speed.

    Handles the common cases in one call: digits (with or without "+") of a single-region country
    code without national-prefix digits, classified mobile, or (not strict) unclassified but
    possible. Everything else goes to _verdict, which decides exactly the same way.
    """
    digits = (key[1:] if key[:1] == "+" else key).lstrip("0")  # + and 00 mean the same here
    if MIN_DIGITS <= len(digits) <= MAX_DIGITS and digits.isdigit():
        cc = (nb._prefixes or nb.prefix_table()).get(digits[:3])
        code = nb._codes.get(cc) if cc else None
        if code is not None:
            nsn = digits[len(cc):]  # type: ignore[arg-type]
            if code.prefix is None or code.prefix.match(nsn) is None:
                region = code.only_region
                if region is None:  # a shared code (+1, +7, +44): pick the region as phonenumbers does
                    if code.number_type(nsn)[0] in _ACCEPTED_TYPES:
                        return True, digits, None
                else:
                    entry = region.classifier(len(nsn))
                    if entry is not None:
                        found = entry[0](nsn)
                        if found is not None:
                            if entry[1][found.lastgroup] in _ACCEPTED_TYPES:
                                return True, digits, None
                        elif (not strict and len(nsn) in code.open_lengths and nsn[0] != "0"
                              and region.general(nsn) is not None):
                            return True, digits, None  # a range newer than the metadata
    return _verdict(key, None, strict)


def _check(raw: Any, home: _Home | None, strict: bool) -> _Verdict:
    text = _text(raw)
    if not text.strip():
        return _EMPTY
    return _verdict(_key(text), home, strict)


def _text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))  # 96598765432.0 from a spreadsheet column
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return str(raw)


# --- public API ---------------------------------------------------------------------------------


def validate_phone(raw: str | int, default_country: str | int | None = None,
                   strict: bool = False) -> PhoneCheck:
    """Validates one number: never raises for a bad number, only for a bad default_country."""
    home = _resolve_home(default_country)
    ok, number, reason = _check(raw, home, strict)
    return PhoneCheck(ok, number, None if ok else reason.format(_text(raw).strip()))  # type: ignore[union-attr]


def normalize_phone(raw: str | int, default_country: str | int | None = None) -> str:
    """Digits only, country code first: "+965 9876-5432", "٩٦٥٩٨٧٦٥٤٣٢", "0096598765432" -> "96598765432".

    With ``default_country`` a local number gains its country code ("98765432" -> "96598765432").
    It does not reject anything: an input without digits gives "", and ``validate_phone`` says
    whether the result is a number that can receive SMS.
    """
    home = _resolve_home(default_country)
    return _check(raw, home, False)[1]


def split_recipients(value: Any) -> list[str]:
    """Raw inputs as a list of strings, one per recipient.

    A string is split on commas, semicolons and newlines; separators and white space at its two
    ends are ignored (a trailing comma, a final newline), but an empty entry between two
    separators ("a,,b") is kept as "" so that it is reported instead of silently lost. Any other
    iterable gives one entry per item (strings among them are split the same way); numbers are
    turned into digits; None and empty items are kept as "" (reported as empty entries).
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return _split_text(_text(value))
    if isinstance(value, (int, float)):
        return [_text(value)]
    out: list[str] = []
    append = out.append
    for item in value:
        if isinstance(item, str):
            if "," in item or ";" in item or "\n" in item or "\r" in item:
                out.extend(_split_text(item) or [""])
            else:
                append(item)
        else:
            text = _text(item)
            if _SEPARATORS.search(text):
                out.extend(_split_text(text) or [""])
            else:
                append(text)
    return out


def _split_text(text: str) -> list[str]:
    text = text.strip(_BLANK_ENDS)
    if not text:
        return []
    return [part.strip() for part in _SPLIT.split(text)] if _SEPARATORS.search(text) else [text]


def prepare_recipients(raws: Iterable[Any] | str | int | None, default_country: str | int | None = None,
                       strict: bool = False) -> Recipients:
    """Valid unique numbers in first-seen order, every invalid input with its reason, the duplicates.

    Every entry of ``split_recipients(raws)`` lands in exactly one of the three lists.
    """
    home = _resolve_home(default_country)
    items = split_recipients(raws)
    valid: list[str] = []
    invalid: list[InvalidInput] = []
    duplicates: list[DuplicateInput] = []
    memo: dict[str, _Verdict] = {}  # key -> verdict: each distinct number is judged once
    # A big list allocates millions of small objects and no cycles: the cyclic garbage collector
    # would only re-scan them again and again (about a fifth of the time), so it pauses meanwhile.
    pause_gc = len(items) > 10_000 and gc.isenabled()
    if pause_gc:
        gc.disable()
    try:
        _sort(items, home, strict, memo, valid, invalid, duplicates)
    finally:
        if pause_gc:
            gc.enable()
    return Recipients(valid, invalid, duplicates)


def _sort(items: list[str], home: _Home | None, strict: bool, memo: dict[str, _Verdict], valid: list[str],
          invalid: list[InvalidInput], duplicates: list[DuplicateInput]) -> None:
    seen: set[str] = set()
    for raw, key in zip(items, _keys(items), strict=True):
        if not raw.isascii():
            key = _key(raw)
        verdict = memo.get(key)
        if verdict is None:
            if not key.strip("+"):  # nothing but blanks and punctuation: which depends on the text
                verdict = _NO_DIGITS if raw.strip() else _EMPTY
            elif home is None:
                verdict = memo[key] = _fast_verdict(key, strict)
            else:
                verdict = memo[key] = _verdict(key, home, strict)
        if verdict[0]:
            number = verdict[1]
            if number in seen:
                duplicates.append(DuplicateInput(raw, number))
            else:
                seen.add(number)
                valid.append(number)
        else:
            invalid.append(InvalidInput(raw, verdict[2].format(raw.strip())))  # type: ignore[union-attr]
