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
import re._parser as sre  # the pattern parser, to see how many trailing digits a pattern leaves free
import unicodedata
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from functools import cache, lru_cache
from itertools import compress, repeat
from numbers import Number
from operator import not_
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
_FOREIGN_DIGIT = re.compile(r"(?![0-9])\d")
_KEPT_BYTES = b"0123456789+@\n"
_DROPPED_BYTES = bytes(i for i in range(256) if i not in _KEPT_BYTES)
_SEPARATORS = re.compile(r"[,;\r\n]")
# One separator: a comma or semicolon with any white space (newlines too) around it, or a run of
# line breaks. "a;\nb" and "a\n\nb" are two entries; "a,,b" keeps its empty middle entry.
# The look-behinds keep it linear: a match may start inside a run of white space only where the
# previous separator ended, and there only at a comma or semicolon; without them, every position of
# a long run of spaces ("1,a" + " " * n + "b") rescanned the rest of the run (20 KB took 9 s).
_SPLIT = re.compile(r"(?<!\s)\s*[,;]\s*|(?<!\s)\s*[\r\n]\s*|[,;]\s*")
_BLANK_ENDS = " \t\r\n\f\v,;"

_ACCEPTED_TYPES = frozenset((nb.MOBILE, nb.FIXED_LINE_OR_MOBILE))
_TYPE_WORDS = {
    "PREMIUM_RATE": "premium-rate",
    "TOLL_FREE": "toll-free",
    "SHARED_COST": "shared-cost",
    "VOIP": "VoIP",
    "PERSONAL_NUMBER": "personal (follow-me)",
    "PAGER": "pager",
    "UAN": "universal access (UAN)",
    "VOICEMAIL": "voicemail",
}
_LOCAL_HINT = (
    " If it is a local number, add its country code (e.g. 96598765432 for Kuwait) or set default_country."
)


@dataclass(frozen=True)
class PhoneCheck:
    """One input's verdict: ``number`` is digits only, country code first (what would be sent)."""

    valid: bool
    number: str
    error: str | None


@dataclass(frozen=True, slots=True)
class InvalidInput:
    input: str
    reason: str


@dataclass(frozen=True, slots=True)
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
    """ "KW", "kw", "965", "+965", "00965" or 965 -> the country's calling code; None stays None."""
    if default_country is None:
        return None
    text = _entry(default_country)
    if text.__class__ is _Refused:
        raise KwtSMSInputError(
            f"default_country {str(text)!r} is not a country: give an ISO country code such as 'KW' "
            "or a calling code such as '965'."
        )
    text = text.strip()
    if not text:
        return None
    digits = text[1:] if text.startswith("+") else text
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
    return _Home(cc, region, max(code.possible_lengths))


# --- reading the digits -------------------------------------------------------------------------


def _key(text: str) -> str:
    """ "+965 9876-5432" -> "+96598765432"; Arabic-Indic, Persian and other digits made Latin."""
    if not text.isascii():
        text = text.translate(_TO_LATIN)
        if not text.isascii():
            text = _OTHER_DIGIT.sub(lambda m: str(unicodedata.digit(m.group(), 0)), text)
    return _NOT_KEPT.sub("", text)


def _keys(items: list[str], joined: str | None = None) -> list[str]:
    """_key of every item, at C speed: one pass over the joined bytes instead of a regex per item.

    ``joined`` is "\\n".join(items) when the caller has it already. Items never contain a newline
    (split_recipients splits on them).
    """
    if not items:
        return []
    if joined is None:
        joined = "\n".join(items)
    keys = joined.encode("utf-8", "surrogatepass").translate(None, _DROPPED_BYTES).decode("ascii").split("\n")
    if not joined.isascii():
        # The bytes pass dropped the non-ASCII digits: redo those items, together when the
        # translation table makes them ASCII (Arabic-Indic, Persian, full-width), else one by one.
        where = list(compress(range(len(items)), map(not_, map(str.isascii, items))))
        others = [items[i] for i in where]
        latin = "\n".join(others).translate(_TO_LATIN)
        if _FOREIGN_DIGIT.search(latin) is None:
            fixed = latin.encode("utf-8", "surrogatepass").translate(None, _DROPPED_BYTES)
            found = fixed.decode("ascii").split("\n")
        else:
            found = [_key(text) for text in others]
        for i, key in zip(where, found, strict=True):
            keys[i] = key
    return keys


# --- judging ------------------------------------------------------------------------------------
# A verdict is (ok, number, reason tail): a message is the input as given, quoted, followed by the
# tail, so that one verdict serves every input with the same digits.

_Verdict = tuple[bool, str, str | None]


@lru_cache(maxsize=4096)
def _reason(what: str, cc: str = "", region: str | None = None, n: int = 0, head: str = "") -> str:
    """The reason tail for one kind of rejection; cached, as bulk lists repeat them."""
    place = country_label(region, cc) if cc else ""
    code = nb.calling_code(cc) if cc else None
    if what == "short":
        return (
            f" is too short to be a phone number ({n} digit{'s' * (n != 1)}; "
            f"a number with its country code has at least {MIN_DIGITS})."
        )
    if what == "long":
        return (
            f" is too long to be a phone number ({n} digits; at most {MAX_DIGITS} with "
            "the country code): check for two numbers run together."
        )
    if what == "code":
        return (
            f" starts with no known country calling code ({head}...): give the number "
            "with its country code, e.g. 96598765432."
        )
    if what == "length" and code is not None:
        expected = " or ".join(str(x) for x in code.possible_lengths)
        return f" has the wrong length for {place}: {n} digits after +{cc}, expected {expected}."
    if what == "mobile-length" and code is not None:
        expected = " or ".join(str(x) for x in code.mobile_lengths)
        return (
            f" has the wrong length for a mobile number in {place}: {n} digits after "
            f"+{cc}, mobile numbers there have {expected}."
        )
    if what == "range":
        return f" is not in a number range used in {place}: check the digits."
    if what == "strict":
        return (
            f" fits the numbering plan of {place} but is not a known mobile range in "
            "libphonenumber's metadata (rejected because strict=True)."
        )
    if what == nb.FIXED_LINE:
        return f" is a landline (fixed line) in {place}: landlines cannot receive SMS; give a mobile number."
    return (
        f" is a {_TYPE_WORDS.get(what, what)} number in {place}, not a mobile: it cannot "
        "receive SMS; give a mobile number."
    )


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
    kind, region, national = code.classify(digits[len(cc) :])  # type: ignore[arg-type]
    if kind in _ACCEPTED_TYPES:
        return True, cc + national, None  # type: ignore[operator]
    return _rejected(code, cc, kind, region, national, strict)  # type: ignore[arg-type]


def _rejected(
    code: nb.CallingCode, cc: str, kind: str, region: str | None, national: str, strict: bool
) -> _Verdict:
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


# An entry that is empty or only white space: its message cannot quote it usefully.
_EMPTY_MESSAGE = "empty entry: no phone number was given here (did a template value render empty?)."
_EMPTY: _Verdict = (False, "", "")
_EMAIL: _Verdict = (False, "", " is an e-mail address, not a phone number: give the mobile number instead.")
_NO_DIGITS: _Verdict = (
    False,
    "",
    " has no digits: give a mobile number with its country code, e.g. 96598765432.",
)


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


def _message(shown: str, tail: str) -> str:
    """The reason for an input shown as ``shown`` (stripped) whose verdict has this tail."""
    return repr(shown) + tail if shown else _EMPTY_MESSAGE


def _check(text: str, home: _Home | None, strict: bool) -> _Verdict:
    if not text.strip():
        return _EMPTY
    return _verdict(_key(text), home, strict)


# --- one input as the text of one entry ----------------------------------------------------------


class _Refused(str):
    """The text of an entry refused for what it is, whatever its digits (a fractional float, an
    int too big to write out, a mapping...), with the reason (the whole message)."""

    reason: str

    def __new__(cls, text: str, reason: str = "") -> _Refused:
        entry = super().__new__(cls, text)
        entry.reason = reason
        return entry

    def __reduce__(self) -> tuple[Any, ...]:
        return _Refused, (str(self), self.reason)


_BYTES_LIKE = (bytes, bytearray, memoryview)
# Past this size a number is no phone number, and int -> str may refuse it (sys.int_info's limit).
_HUGE_BITS = 996  # about 300 digits
_HUGE = 1 << _HUGE_BITS
_GIVE_DIGITS = "give the phone number as digits with its country code, e.g. '96598765432'."


def _huge_int(value: int) -> _Refused:
    digits = int(value.bit_length() * 0.30103) + 1  # without writing the number out
    text = f"<int of about {digits} digits>"
    return _Refused(
        text,
        f"an int of about {digits} digits is too long to be a phone number (at most {MAX_DIGITS} "
        f"digits with the country code): {_GIVE_DIGITS}",
    )


def _shown(value: Any) -> str:
    """str(value) for a message, or its type when that fails."""
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__} object>"


def _number_entry(value: Any) -> str:
    """A number other than an int (float, Decimal, Fraction, numpy...): the digits of a whole one,
    else a refusal. A fraction is refused, not read digit by digit: 96598765432.5 is no number."""
    try:
        if value != value:
            text = _shown(value)
            return _Refused(text, f"{text!r} is not a number (NaN): {_GIVE_DIGITS}")
        if value >= _HUGE or value <= -_HUGE:  # infinity too (compared, not computed: no overflow)
            text = _shown(value)
            return _Refused(
                text,
                f"{text!r} is too big to be a phone number (at most {MAX_DIGITS} digits with the "
                f"country code): {_GIVE_DIGITS}",
            )
        whole = int(value)
        fractional = whole != value
    except Exception:  # complex, a signalling NaN, a type without int(): not a whole number
        fractional = True
    if fractional:
        text = _shown(value)
        return _Refused(text, f"{text!r} is not a whole number, so not a phone number: {_GIVE_DIGITS}")
    return str(whole)


def _entry(raw: Any) -> str:
    """One value that is not a list of values, as the text of one entry (bytes decoded, a whole
    number written out; None is an empty entry). Never raises."""
    if isinstance(raw, str):
        return raw
    if raw is None:
        return ""
    if isinstance(raw, int):
        return str(raw) if raw.bit_length() <= _HUGE_BITS else _huge_int(raw)
    if isinstance(raw, _BYTES_LIKE):
        return bytes(raw).decode("utf-8", "replace")
    if isinstance(raw, Number):
        return _number_entry(raw)
    if isinstance(raw, Mapping):
        name = type(raw).__name__
        return _Refused(
            f"<{name}>",
            f"a {name} (a mapping) is not a phone number: give the phone numbers as a list or "
            "as one comma-separated string.",
        )
    name = type(raw).__name__
    if type(raw).__str__ is object.__str__ and type(raw).__repr__ is object.__repr__:
        # "<object object at 0x7f...>": digits of a memory address, not of a phone number.
        return _Refused(
            f"<{name} object>",
            f"an object of type {name} is not a phone number (it has no text of its own): {_GIVE_DIGITS}",
        )
    try:
        text = str(raw)
    except Exception as error:
        return _Refused(
            f"<{name} object>",
            f"an object of type {name} could not be read as text (str() raised {type(error).__name__}): "
            f"{_GIVE_DIGITS}",
        )
    # One value, one entry: its text is not split, and a newline in it (which would end the entry
    # in _keys' joined text) counts as a space, like the other separators its digits ignore.
    return text.replace("\n", " ") if "\n" in text else text


def _iterator(raw: Any) -> Any:
    """An iterator over raw's values when raw is a list of values (list, tuple, set, generator...),
    else None. Text, bytes and mappings are values, not lists."""
    if isinstance(raw, (list, tuple)):
        return iter(raw)
    if isinstance(raw, (str, *_BYTES_LIKE, Mapping)) or not hasattr(type(raw), "__iter__"):
        return None
    try:
        return iter(raw)
    except TypeError:  # declares __iter__ but refuses (a numpy 0-d array): one value
        return None


def _single(raw: Any) -> str:
    """validate_phone's input as the text of one entry; a list of values is refused."""
    if _iterator(raw) is not None:
        name = type(raw).__name__
        return _Refused(
            f"<{name}>",
            f"a {name} is not one phone number: validate each number, or use prepare_recipients for several.",
        )
    return _entry(raw)


# --- public API ---------------------------------------------------------------------------------


def validate_phone(
    raw: str | int, default_country: str | int | None = None, strict: bool = False
) -> PhoneCheck:
    """Validates one number: never raises for a bad number, only for a bad default_country."""
    home = _resolve_home(default_country)
    text = _single(raw)
    if text.__class__ is _Refused:
        return PhoneCheck(False, "", text.reason)  # type: ignore[attr-defined]
    ok, number, tail = _check(text, home, strict)
    return PhoneCheck(ok, number, None if ok else _message(text.strip(), tail))  # type: ignore[arg-type]


def normalize_phone(raw: str | int, default_country: str | int | None = None) -> str:
    """Digits only, country code first: "+965 9876-5432", "٩٦٥٩٨٧٦٥٤٣٢", "0096598765432" -> "96598765432".

    With ``default_country`` a local number gains its country code ("98765432" -> "96598765432").
    It does not reject anything: an input without digits gives "", and ``validate_phone`` says
    whether the result is a number that can receive SMS.
    """
    home = _resolve_home(default_country)
    text = _single(raw)
    return "" if text.__class__ is _Refused else _check(text, home, False)[1]


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
    return _split(value)[0]


def _split(value: Any) -> tuple[list[str], list[int]]:
    """split_recipients(value), and the positions of its refused entries (see _Refused)."""
    if value is None:
        return [], []
    if isinstance(value, str) and value.__class__ is not _Refused:
        return _split_text(value), []
    if isinstance(value, _BYTES_LIKE):
        return _split_text(_entry(value)), []
    out: list[str] = []
    refused: list[int] = []
    append = out.append
    items = _iterator(value)
    if items is None:  # one value
        entry = _entry(value)
        if entry.__class__ is _Refused:
            refused.append(0)
        return [entry], refused
    # Depth first, without recursion (any depth); the ids of the lists being read, to refuse one
    # that holds itself instead of reading it forever.
    stack = [items]
    reading = [id(value)]
    while stack:
        for item in stack[-1]:
            cls = item.__class__
            if cls is str:
                if "," in item or ";" in item or "\n" in item or "\r" in item:
                    out.extend(_split_text(item) or [""])
                else:
                    append(item)
            elif cls is int:
                append(str(item) if item.bit_length() <= _HUGE_BITS else _huge_int(item))
            elif item is None:
                append("")
            else:
                inner = _iterator(item)
                if inner is None:
                    entry = _entry(item)
                    if isinstance(item, (str, *_BYTES_LIKE)) and cls is not _Refused:
                        out.extend(_split_text(entry) or [""])  # text: split like a str
                    else:
                        append(entry)
                elif id(item) in reading:
                    name = type(item).__name__
                    append(
                        _Refused(
                            f"<{name} holding itself>",
                            f"a {name} that holds itself is not a phone number: give each phone "
                            "number once, in a list without cycles.",
                        )
                    )
                else:
                    stack.append(inner)
                    reading.append(id(item))
                    break  # read the inner list first, then go on with this one
                if out and out[-1].__class__ is _Refused:
                    refused.append(len(out) - 1)
                continue
            if cls is int and out[-1].__class__ is _Refused:
                refused.append(len(out) - 1)
        else:  # this list is done
            stack.pop()
            reading.pop()
    return out, refused


def _split_text(text: str) -> list[str]:
    text = text.strip(_BLANK_ENDS)
    if not text:
        return []
    return [part.strip() for part in _SPLIT.split(text)] if _SEPARATORS.search(text) else [text]


def _items(value: Any) -> tuple[list[str], str | None, list[int]]:
    """split_recipients(value), the items joined by newlines when that came for free, and the
    positions of the refused entries (see _Refused).

    The common bulk input, a list of strings without separators, is recognised at C speed.
    """
    if isinstance(value, (list, tuple)) and value:
        try:
            joined = "\n".join(value)
        except TypeError:  # not all strings
            pass
        else:
            if (
                "," not in joined
                and ";" not in joined
                and "\r" not in joined
                and joined.count("\n") == len(value) - 1
            ):
                return list(value), joined, []
    items, refused = _split(value)
    return items, None, refused


def prepare_recipients(
    raws: Iterable[Any] | str | int | None, default_country: str | int | None = None, strict: bool = False
) -> Recipients:
    """Valid unique numbers in first-seen order, every invalid input with its reason, the duplicates.

    Every entry of ``split_recipients(raws)`` lands in exactly one of the three lists.
    """
    home = _resolve_home(default_country)
    items, joined, refused = _items(raws)
    # A big list allocates millions of small objects and no cycles: the cyclic garbage collector
    # would only re-scan them again and again, so it pauses meanwhile.
    pause_gc = len(items) > 10_000 and gc.isenabled()
    if pause_gc:
        gc.disable()
    try:
        keys = _keys(items, joined)
        for i in refused:
            keys[i] = "@"  # judged invalid whatever its digits; its own reason replaces the verdict's
        recipients = _sort(items, keys, home, strict)
        if refused:
            recipients.invalid = [
                InvalidInput(str(bad.input), bad.input.reason) if bad.input.__class__ is _Refused else bad
                for bad in recipients.invalid
            ]
        return recipients
    finally:
        if pause_gc:
            gc.enable()


# --- bulk judging -------------------------------------------------------------------------------
# Each distinct key is judged once. Most take the hot path (_hot); the others a lean path (_lean)
# through a "plan" built once per (calling code, length): the regions' combined type patterns of
# that length and every outcome's reason already made. Anything else goes to _verdict, which
# decides the same way, only slower.

# A plan: (calling-code length, national-prefix digit or None, national-prefix matcher or None,
# the regions in phonenumbers' order as (leading-digits matcher or None, combined type matcher or
# None, group name -> outcome), then for a number no region classifies: the tail whatever its
# digits or None, the general-pattern matchers that allow its length, the tail outside them and
# the tail inside them (None: accepted). An outcome is None (accepted), a reason tail, or (mobile
# matcher, landline tail) where the fixed-line and mobile patterns may overlap.
_Plan = tuple[int, Any, Any, tuple[tuple[Any, Any, dict[str, Any]], ...], Any, tuple[Any, ...], str, Any]
_plans: dict[bool, list[dict[str, _Plan | None]]] = {}
# The hot path, inlined in _sort_international, for calling codes whose national prefix is none,
# one digit or literal alternatives: strict -> first three digits -> per length (calling-code
# length, depth, verdict table, shared by the heads of one calling code). Every pattern that can
# decide such a number (types, general, leading digits) ends in "any digit" repeated at least
# (length - depth) times, so the verdict depends only on the first ``depth`` digits of the
# national number: the table maps those digits to the verdict (None: valid, the number being the
# digits; a reason tail; or _UNBUILT for the national-prefix and trunk-0 cases, which need
# _judge_key). Filled lazily, one _lean call per distinct head of digits, up to _TABLE_CAP entries
# (then misses are judged without being kept, so that memory stays bounded).
_Shape = tuple[int, int, dict[str, Any]]
_hot: dict[bool, dict[str, list[_Shape | None]]] = {False: {}, True: {}}
_MAX_DEPTH = 7  # tables fill lazily: at most one entry per distinct number seen
_TABLE_CAP = 200_000
_UNBUILT: Any = object()


def _any_digit(items: Any) -> bool:
    """Whether a parsed character class (re._parser IN items) accepts every digit 0-9."""
    covered: set[int] = set()
    for op, arg in items:
        if op is sre.LITERAL:
            covered.add(arg)
        elif op is sre.RANGE:
            covered.update(range(arg[0], arg[1] + 1))
        elif op is sre.CATEGORY and arg is sre.CATEGORY_DIGIT:
            covered.update(range(48, 58))
        else:  # NEGATE and anything else: be conservative
            return False
    return covered.issuperset(range(48, 58))


_NEVER = 10**6  # _free_tail of a pattern that matches no string of the given size


def _free_tail(items: Any, size: int | None) -> int:
    """A lower bound on how many characters at the end of every match of this parsed sequence are
    "any digit", for matches of exactly ``size`` characters (None: of any size); _NEVER when no
    match of that size exists (then the pattern cannot decide anything)."""
    items = list(items)
    # widths[i]: the (shortest, longest) match of items[:i]
    widths = [(0, 0)]
    for item in items:
        low, high = sre.SubPattern(sre.State(), [item]).getwidth()
        widths.append((widths[-1][0] + low, widths[-1][1] + high))
    if size is not None and not widths[-1][0] <= size <= widths[-1][1]:
        return _NEVER
    count = 0
    for i in range(len(items) - 1, -1, -1):
        op, arg = items[i]
        if op is sre.IN and _any_digit(arg):
            count += 1
            continue
        # What is left for the items[i] when the ones before it have a fixed width.
        low_before, high_before = widths[i]
        left = size - low_before - count if size is not None and low_before == high_before else None
        if op is sre.MAX_REPEAT or op is sre.MIN_REPEAT:
            low, high, body = arg
            body = list(body)
            if len(body) == 1 and body[0][0] is sre.IN and _any_digit(body[0][1]):
                if low == high:
                    count += low
                    continue
                if left is not None:
                    if not low <= left <= high:
                        return _NEVER
                    count += left
                    continue
                return count + low
            return count
        if op is sre.SUBPATTERN:
            return count + _free_tail(arg[-1], left)
        if op is sre.BRANCH:
            return count + min(_free_tail(branch, left) for branch in arg[1])
        return count
    return count if size is None or size == count else _NEVER


def _depth(patterns: list[str], size: int) -> int:
    """The number of leading digits that decide whether a number of ``size`` digits matches each
    of the patterns (at least 1)."""
    return max(1, size - min((_pattern_free_tail(p, size) for p in patterns), default=size))


@cache
def _pattern_free_tail(pattern: str, size: int) -> int:
    parsed = _parsed(pattern)
    if parsed is None or not _plain(parsed):
        return 0  # look-arounds, anchors, back-references...: the whole number may decide
    return min(size, _free_tail(parsed, size))


_PLAIN_OPS = frozenset(
    (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.MAX_REPEAT, sre.MIN_REPEAT, sre.SUBPATTERN, sre.BRANCH)
)


def _plain(items: Any) -> bool:
    """Whether a parsed pattern only consumes characters, each item looking at its own: then the
    items before the free tail cannot look into it."""
    for op, arg in items:
        if op not in _PLAIN_OPS:
            return False
        if op is sre.MAX_REPEAT or op is sre.MIN_REPEAT:
            if not _plain(arg[2]):
                return False
        elif op is sre.SUBPATTERN:
            if not _plain(arg[-1]):
                return False
        elif op is sre.BRANCH and not all(_plain(branch) for branch in arg[1]):
            return False
    return True


@cache
def _parsed(pattern: str) -> Any:
    try:
        return sre.parse(pattern)
    except Exception:  # an unexpected construct: the whole number decides
        return None


def _plan(head: str, n: int, strict: bool) -> _Plan | None:
    """The plan for numbers of n digits (country code included) starting with ``head``, or None
    when no calling code starts them; registers the hot-path shape of the head too."""
    cc = (nb._prefixes or nb.prefix_table()).get(head)
    if cc is None or nb.calling_code(cc) is None:
        return None
    plan, shape = _code_plan(cc, n, strict)
    if shape is not None:
        _hot[strict].setdefault(head, [None] * (MAX_DIGITS + 1))[n] = shape
    return plan


@cache
def _code_plan(cc: str, n: int, strict: bool) -> tuple[_Plan, _Shape | None]:
    """The plan (and hot-path shape, whose table is shared by all heads) of calling code cc for
    numbers of n digits."""
    code = nb.calling_code(cc)
    assert code is not None
    size = n - len(cc)
    regions = []
    for region in code.regions:
        entry = region.classifier(size)
        combined, outcomes = None, {}
        if entry is not None:
            combined, names, mobile = entry
            for group, kind in names.items():
                tail = None if kind in _ACCEPTED_TYPES else _reason(kind, cc, region.code)  # type: ignore[arg-type]
                outcomes[group] = (mobile, tail) if kind == nb.FIXED_LINE and mobile is not None else tail
        regions.append((None if code.single else region.leading, combined, outcomes))
    # What _rejected says of an unclassified number (not starting with 0) of this length.
    main = code.region_codes[0]
    fixed_tail = None
    if code.test_length("1" * size) != nb.IS_POSSIBLE:
        fixed_tail = _reason("length", cc, main, size)  # type: ignore[arg-type]
    elif size not in code.mobile_lengths:
        fixed_tail = _reason("mobile-length", cc, main, size)  # type: ignore[arg-type]
    generals = tuple(r.general for r in code.regions if r.general_allows(size))
    trunk_digit, trunk_match = None, None
    shape: _Shape | None = None
    if code.prefix is not None:
        if len(code.prefix.pattern) == 1 and code.prefix.pattern.isdigit():
            trunk_digit = code.prefix.pattern
        else:
            trunk_match = code.prefix.match
    # A national prefix made of literal alternatives ("0|180020" for +44) is matched by the first
    # digits only: as many as its longest alternative.
    literals = code.prefix.pattern.split("|") if trunk_match is not None else []
    prefix_width = max(map(len, literals)) if literals and all(x.isdigit() for x in literals) else None
    if trunk_match is None or prefix_width is not None:
        patterns = [
            desc.national_number_pattern
            for region in code.regions
            for desc in [region.meta.general_desc]
            + [getattr(region.meta, field) for field, _ in nb._TYPE_FIELDS]
            if nb._desc_allows(desc, size)
        ]  # the others decide nothing at this length
        depth = _depth(patterns, size)
        if not code.single:  # region_code_for_number also reads the regions' leading digits
            for region in code.regions:
                if region.meta.leading_digits:
                    parsed = _parsed(region.meta.leading_digits)  # matched at the start: its width decides
                    plain = parsed is not None and _plain(parsed)
                    depth = max(depth, parsed.getwidth()[1] if plain else size)
        depth = max(depth, prefix_width or 0)
        if depth <= _MAX_DEPTH:
            shape = (len(cc), depth, {})
    plan = (
        len(cc),
        trunk_digit,
        trunk_match,
        tuple(regions),
        fixed_tail,
        generals,
        _reason("range", cc, main),
        _reason("strict", cc, main) if strict else None,
    )
    return plan, shape  # type: ignore[return-value]


def _lean(digits: str, plans: list[dict[str, _Plan | None]], strict: bool) -> tuple[bool, str] | None:
    """_judge(digits) for the common shapes: (True, number) or (False, reason tail); None when
    only _judge can tell. ``digits`` are 7 to 15 digits not starting with 0."""
    head = digits[:3]
    plan = plans[len(digits)].get(head, _UNBUILT)
    if plan is _UNBUILT:
        plan = plans[len(digits)][head] = _plan(head, len(digits), strict)
    if plan is None:
        return False, _reason("code", head=head)
    cut, trunk_digit, trunk_match, regions, fixed_tail, generals, out_tail, in_tail = plan
    nsn = digits[cut:]
    if trunk_digit is not None and nsn[0] == trunk_digit:
        return _lean_trunk(digits, cut, plans, strict)
    if trunk_match is not None and trunk_match(nsn) is not None:
        return None
    for leading, combined, outcomes in regions:  # the region as region_code_for_number picks it
        if leading is not None:
            if leading(nsn) is None:
                continue
            found = combined(nsn) if combined is not None else None
        else:
            found = combined(nsn) if combined is not None else None
            if found is None:
                continue
        if found is None:
            break
        tail = outcomes[found.lastgroup]
        if tail is not None and tail.__class__ is tuple:
            tail = None if tail[0](nsn) is not None else tail[1]
        return (True, digits) if tail is None else (False, tail)
    # Classified by no region.
    if nsn[0] == "0":
        # A trunk 0 left after the country code (+965 0 98765432): _rejected retries without it.
        retry = digits[:cut] + nsn.lstrip("0")
        if len(retry) >= MIN_DIGITS:
            verdict = _lean(retry, plans, strict)
            if verdict is not None and verdict[0]:
                return verdict
        return None
    if fixed_tail is not None:
        return False, fixed_tail
    for general in generals:
        if general(nsn) is not None:
            return (True, digits) if in_tail is None else (False, in_tail)
    return False, out_tail


def _lean_trunk(
    digits: str, cut: int, plans: list[dict[str, _Plan | None]], strict: bool
) -> tuple[bool, str] | None:
    """_lean for a number whose national part starts with its country's one-digit national prefix
    (966 0 559123456): parse() strips the prefix when CallingCode.national_number would."""
    cc = digits[:cut]
    code = nb._codes[cc]
    nsn = digits[cut:]
    national = code.national_number(nsn)
    if national is nsn or national[:1] in ("0", nsn[0]) or len(cc) + len(national) < MIN_DIGITS:
        return None
    return _lean(cc + national, plans, strict)


def _judge_key(key: str, home: _Home | None, strict: bool, tail_of: dict[str, str]) -> str | None:
    """_verdict(key, home, strict) in bulk form: the number, or None with tail_of[key] set."""
    digits = key.lstrip("+0")  # "+" and "00" mean the same here
    # The lean path: digits only and (with default_country) given with + or 00.
    if digits.isdigit() and (home is None or key[0] == "+" or key[:2] == "00"):
        n = len(digits)
        if n < MIN_DIGITS:
            verdict: tuple[bool, str] | None = (False, _reason("short", n=n))
        elif n > MAX_DIGITS:
            verdict = (False, _reason("long", n=n))
        else:
            verdict = _lean(digits, _plans[strict], strict)
        if verdict is not None:
            if verdict[0]:
                return verdict[1]
            tail_of[key] = verdict[1] if home is not None else _with_hint(key, verdict[1])
            return None
    ok, number, tail = _verdict(key, home, strict)
    if ok:
        return number
    tail_of[key] = tail  # type: ignore[assignment]
    return None


def _table_entry(digits: str, cut: int, plans: list[dict[str, _Plan | None]], strict: bool) -> Any:
    """The verdict that every number sharing this one's head gets (see _hot)."""
    _, trunk_digit, trunk_match = plans[len(digits)][digits[:3]][:3]  # type: ignore[index]
    first = digits[cut]
    if first == "0" or first == trunk_digit or (trunk_match is not None and trunk_match(digits[cut:])):
        return _UNBUILT  # a national prefix or trunk 0: the number sent may differ, see _lean
    verdict = _lean(digits, plans, strict)
    if verdict is None:
        return _UNBUILT
    return None if verdict[0] else verdict[1]


def _with_hint(key: str, tail: str) -> str:
    """The tail of a rejection without default_country, with _judge_input's local-number hint."""
    digits = key.replace("+", "") if "+" in key else key
    if key[:1] != "+" and digits[:2] != "00" and len(digits) <= 10:
        return tail + _LOCAL_HINT
    return tail


# --- sorting the inputs -------------------------------------------------------------------------


def _sort(items: list[str], keys: list[str], home: _Home | None, strict: bool) -> Recipients:
    """Every input into one of the three lists; each distinct key is judged once, when first met.
    With default_country a key's reading depends on how it is written ("+" or not): one memo entry
    per key. Without, _sort_international shares entries and takes the hot path."""
    if strict not in _plans:
        _plans[strict] = [{} for _ in range(MAX_DIGITS + 1)]
    if home is None:
        return _sort_international(items, keys, strict)
    number_of: dict[str, str] = {}  # key -> its number, or "" when invalid
    tail_of: dict[str, str] = {}  # key -> reason tail, for the invalid keys
    valid: list[str] = []
    seen: set[str] = set()
    dup_inputs: list[str] = []
    dup_numbers: list[str] = []
    bad_inputs: list[str] = []
    bad_keys: list[str] = []
    add, keep, repeat_input, repeat_number, refuse, refused_key = (
        seen.add,
        valid.append,
        dup_inputs.append,
        dup_numbers.append,
        bad_inputs.append,
        bad_keys.append,
    )
    number = number_of.get
    for raw, key in zip(items, keys, strict=True):
        found = number(key)
        if found is None:
            found = number_of[key] = _judge_key(key, home, strict, tail_of) or ""
            if not found:
                refuse(raw)
                refused_key(key)
            elif found in seen:  # given before by another key (another format)
                repeat_input(raw)
                repeat_number(found)
            else:
                add(found)
                keep(found)
        elif not found:
            refuse(raw)
            refused_key(key)
        else:  # a key met before: its number is in valid already
            repeat_input(raw)
            repeat_number(found)
    tails = list(map(tail_of.__getitem__, bad_keys))
    return _recipients(valid, bad_inputs, tails, dup_inputs, dup_numbers)


def _sort_international(items: list[str], keys: list[str], strict: bool) -> Recipients:
    """_sort without default_country. Then a key's verdict depends on its digits only, whether
    written with "+", "00" or neither, except for the local-number hint of a rejection: so one
    memo entry serves all three, keyed by the digits, and the hint is added per input."""
    plans = _plans[strict]
    hot = _hot[strict].get
    memo: dict[str, str] = {}  # key without its leading "+" and zeros -> number, or "" when invalid
    memo_get = memo.get
    tail_of: dict[str, str] = {}  # the same -> reason tail, without the hint
    spare: dict[str, str] = {}  # _judge_key's reason tail comes through here
    # Valid numbers reached from another memo entry ("9650..." -> "965...", "+" inside): the
    # others are in `valid` exactly when memo[number] == number.
    moved: set[str] = set()
    valid: list[str] = []
    dup_inputs: list[str] = []
    dup_numbers: list[str] = []
    bad_inputs: list[str] = []
    bad_keys: list[str] = []
    bad_tails: list[str] = []
    keep, repeat_input, repeat_number, refuse, refused_key, refused_tail = (
        valid.append,
        dup_inputs.append,
        dup_numbers.append,
        bad_inputs.append,
        bad_keys.append,
        bad_tails.append,
    )
    for raw, key in zip(items, keys, strict=True):
        digits = key.lstrip("+0")
        found = memo_get(digits)
        if found is None:
            # The hot path (see _hot): the verdict table of the number's calling code and length,
            # looked up by the leading digits that decide.
            tail = _UNBUILT
            by_length = hot(digits[:3])
            n = len(digits)
            if by_length is not None and n <= MAX_DIGITS and digits.isdigit():
                shape = by_length[n]
                if shape is not None:
                    cut, depth, table = shape
                    head = digits[cut : cut + depth]
                    tail = table.get(head, table)  # the table itself: not looked up yet
                    if tail is table:
                        tail = _table_entry(digits, cut, plans, strict)
                        if len(table) < _TABLE_CAP:
                            table[head] = tail
            if tail is None:
                found = digits
            elif tail is _UNBUILT:  # judged as "+digits": explicit, so no hint yet
                found = _judge_key("+" + digits, None, strict, spare) or ""
                if not found:
                    tail = spare.popitem()[1]
            else:
                found = ""
            memo[digits] = found
            if not found:
                tail_of[digits] = tail
                refuse(raw)
                refused_key(key)
                refused_tail(tail)
            elif found in moved or (found != digits and memo_get(found) == found):
                repeat_input(raw)  # given before, written otherwise
                repeat_number(found)
            else:
                if found != digits:
                    moved.add(found)
                keep(found)
        elif found:  # an entry met before: its number is in valid already
            repeat_input(raw)
            repeat_number(found)
        else:
            refuse(raw)
            refused_key(key)
            refused_tail(tail_of[digits])
    return _recipients(valid, bad_inputs, list(map(_hinted, bad_keys, bad_tails)), dup_inputs, dup_numbers)


def _recipients(
    valid: list[str], bad_inputs: list, tails: list[str], dup_inputs: list, dup_numbers: list[str]
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
                    reasons[i] = _EMPTY_MESSAGE
        invalid = _frozen(InvalidInput, bad_inputs, reasons)
    return Recipients(valid, invalid, _frozen(DuplicateInput, dup_inputs, dup_numbers))


def _hinted(key: str, tail: str) -> str:
    """The tail of a rejection of ``key`` judged as "+digits", with _judge_input's hint."""
    if tail is _EMAIL[2] or tail is _NO_DIGITS[2]:
        return tail  # _verdict answers these before _judge_input
    return _with_hint(key, tail)


def _frozen(cls: type, firsts: list[str], seconds: list[str]) -> list[Any]:
    """[cls(a, b) for a, b in zip(firsts, seconds)] for a frozen two-field slots dataclass, at C speed.

    A frozen dataclass's __init__ sets each field through object.__setattr__ (about 1 µs per
    object here); the slots' own descriptors set them directly, as that __init__ would.
    """
    objects = list(map(object.__new__, repeat(cls, len(firsts))))
    first, second = (getattr(cls, f.name).__set__ for f in fields(cls))
    deque(map(first, objects, firsts), 0)
    deque(map(second, objects, seconds), 0)
    return objects
