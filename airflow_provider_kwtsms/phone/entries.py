"""Raw recipient values -> the text of each entry -> its key (digits made Latin, "+" and "@").

One job: reading what the caller gave. A list (at any depth), a string with separators, bytes, a
whole number or None becomes entry texts; a value that cannot be a phone number whatever its
digits becomes a ``Refused`` entry carrying its reason. Each entry is then reduced to the key that
``_phone_verdict`` judges. Nothing here judges a number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from itertools import compress
from numbers import Number
from operator import not_
from typing import Any

from airflow_provider_kwtsms.phone.verdict import MAX_DIGITS

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
SPLIT = re.compile(r"(?<!\s)\s*[,;]\s*|(?<!\s)\s*[\r\n]\s*|[,;]\s*")
_BLANK_ENDS = " \t\r\n\f\v,;"


# --- one input as the text of one entry ----------------------------------------------------------


class Refused(str):
    """The text of an entry refused for what it is, whatever its digits (a fractional float, an
    int too big to write out, a mapping...), with the reason (the whole message)."""

    reason: str

    def __new__(cls, text: str, reason: str = "") -> Refused:
        entry = super().__new__(cls, text)
        entry.reason = reason
        return entry

    def __reduce__(self) -> tuple[Any, ...]:
        return Refused, (str(self), self.reason)


_BYTES_LIKE = (bytes, bytearray, memoryview)
# Past this size a number is no phone number, and int -> str may refuse it (sys.int_info's limit).
_HUGE_BITS = 996  # about 300 digits
_HUGE = 1 << _HUGE_BITS
_GIVE_DIGITS = "give the phone number as digits with its country code, e.g. '96598765432'."


def _huge_int(value: int) -> Refused:
    digits = int(value.bit_length() * 0.30103) + 1  # without writing the number out
    text = f"<int of about {digits} digits>"
    return Refused(
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
            return Refused(text, f"{text!r} is not a number (NaN): {_GIVE_DIGITS}")
        if value >= _HUGE or value <= -_HUGE:  # infinity too (compared, not computed: no overflow)
            text = _shown(value)
            return Refused(
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
        return Refused(text, f"{text!r} is not a whole number, so not a phone number: {_GIVE_DIGITS}")
    return str(whole)


def as_entry(raw: Any) -> str:
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
        return Refused(
            f"<{name}>",
            f"a {name} (a mapping) is not a phone number: give the phone numbers as a list or "
            "as one comma-separated string.",
        )
    cls: type[object] = type(raw)  # typed: mypy reads type(Any).__str__ as the metaclass's
    name = cls.__name__
    if cls.__str__ is object.__str__ and cls.__repr__ is object.__repr__:
        # "<object object at 0x7f...>": digits of a memory address, not of a phone number.
        return Refused(
            f"<{name} object>",
            f"an object of type {name} is not a phone number (it has no text of its own): {_GIVE_DIGITS}",
        )
    try:
        text = str(raw)
    except Exception as error:
        return Refused(
            f"<{name} object>",
            f"an object of type {name} could not be read as text (str() raised {type(error).__name__}): "
            f"{_GIVE_DIGITS}",
        )
    # One value, one entry: its text is not split, and a newline in it (which would end the entry
    # in keys_of' joined text) counts as a space, like the other separators its digits ignore.
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


def single_entry(raw: Any) -> str:
    """validate_phone's input as the text of one entry; a list of values is refused."""
    if _iterator(raw) is not None:
        name = type(raw).__name__
        return Refused(
            f"<{name}>",
            f"a {name} is not one phone number: validate each number, or use prepare_recipients for several.",
        )
    return as_entry(raw)


def split_entries(value: Any) -> tuple[list[str], list[int]]:
    """split_recipients(value), and the positions of its refused entries (see Refused)."""
    if value is None:
        return [], []
    if isinstance(value, str) and value.__class__ is not Refused:
        return _split_text(value), []
    if isinstance(value, _BYTES_LIKE):
        return _split_text(as_entry(value)), []
    out: list[str] = []
    refused: list[int] = []
    append = out.append
    items = _iterator(value)
    if items is None:  # one value
        entry = as_entry(value)
        if entry.__class__ is Refused:
            refused.append(0)
        return [entry], refused
    # Depth first, without recursion (any depth): each list being read with its id; the ids also
    # in a set (a deep nesting stays linear), to refuse a list that holds itself instead of
    # reading it forever.
    stack = [(items, id(value))]
    reading = {id(value)}
    while stack:
        for item in stack[-1][0]:
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
                    entry = as_entry(item)
                    if isinstance(item, (str, *_BYTES_LIKE)) and cls is not Refused:
                        out.extend(_split_text(entry) or [""])  # text: split like a str
                    else:
                        append(entry)
                elif id(item) in reading:
                    name = type(item).__name__
                    append(
                        Refused(
                            f"<{name} holding itself>",
                            f"a {name} that holds itself is not a phone number: give each phone "
                            "number once, in a list without cycles.",
                        )
                    )
                else:
                    stack.append((inner, id(item)))
                    reading.add(id(item))
                    break  # read the inner list first, then go on with this one
                if out and out[-1].__class__ is Refused:
                    refused.append(len(out) - 1)
                continue
            if cls is int and out[-1].__class__ is Refused:
                refused.append(len(out) - 1)
        else:  # this list is done
            reading.discard(stack.pop()[1])
    return out, refused


def stands_for_several(text: str) -> bool:
    """Text holding a separator (comma, semicolon, line break): several entries, not one."""
    return _SEPARATORS.search(text) is not None


def _split_text(text: str) -> list[str]:
    text = text.strip(_BLANK_ENDS)
    if not text:
        return []
    return [part.strip() for part in SPLIT.split(text)] if _SEPARATORS.search(text) else [text]


def bulk_entries(value: Any) -> tuple[list[str], str | None, list[int]]:
    """split_recipients(value), the items joined by newlines when that came for free, and the
    positions of the refused entries (see Refused).

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
    items, refused = split_entries(value)
    return items, None, refused


# --- reading the digits -------------------------------------------------------------------------


def as_latin_digit(digit: re.Match[str]) -> str:
    """One Unicode decimal digit (a regex match) as its Latin digit: "१" -> "1"."""
    return str(unicodedata.digit(digit.group(), 0))


def key_of(text: str) -> str:
    """ "+965 9876-5432" -> "+96598765432"; Arabic-Indic, Persian and other digits made Latin."""
    if not text.isascii():
        text = text.translate(_TO_LATIN)
        if not text.isascii():
            text = _OTHER_DIGIT.sub(as_latin_digit, text)
    return _NOT_KEPT.sub("", text)


def keys_of(items: list[str], joined: str | None = None) -> list[str]:
    """key_of of every item, at C speed: one pass over the joined bytes instead of a regex per item.

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
            found = [key_of(text) for text in others]
        for i, key in zip(where, found, strict=True):
            keys[i] = key
    return keys
