"""Reading the gateway's JSON answers, which are untrusted: their shape, sizes and numbers.

Everything a field reader returns is safe to compute with and to print: numbers are finite and
within the range the API can give; text is one line (no line break of any kind, no control
character), short, and scrubbed of the password by the caller's ``Redactor``. A field that fails
these checks reads as missing (``None``); whether missing matters is the caller's decision.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from airflow_provider_kwtsms.gateway.redact import Redactor
    from airflow_provider_kwtsms.send.results import BatchResult

# Far above anything real (a balance of a billion credits), far below where float arithmetic
# stops being exact for whole numbers (2**53).
MAX_NUMBER = 1e12
MAX_TEXT = 300  # characters kept of a description or other gateway text
MAX_ITEMS = 100_000  # list items read from one answer (a few per number of a 200-number batch)

_MSG_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_CODE = re.compile(r"[A-Za-z0-9_]{1,40}")
# Every character str.splitlines() breaks on, other control characters and the format characters
# that reorder text (bidi overrides): replaced by a space, so a value stays one visible line.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


class UnreadableAnswer(ValueError):
    """The body is not a JSON object we can read."""


def parse_json(content: bytes) -> Any:
    """The JSON value of ``content``; ``UnreadableAnswer`` for anything else.

    NaN and Infinity literals are refused (they are not JSON); nesting deep enough to exhaust
    the parser's recursion is refused too, rather than escaping as ``RecursionError``."""
    try:
        text = content.decode("utf-8-sig")
        return json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UnreadableAnswer(type(exc).__name__) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def one_line(value: Any, limit: int = MAX_TEXT, redactor: Redactor | None = None) -> str:
    """``value`` as one short printable line (for text that reaches logs and errors), scrubbed by
    ``redactor`` before anything is cut."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = number_text(value)
    else:
        text = ""
    text = redactor.scrub(text, limit * 2) if redactor is not None else text[: limit * 2]
    return _NOT_ONE_LINE.sub(" ", text).strip()[:limit]


def number_text(value: int | float) -> str:
    # str() of a 5,000-digit int raises ValueError (the int-to-str limit): never print one whole.
    if isinstance(value, int) and abs(value) > 10**18:
        return "<a number too large to show>"
    return str(value)


@overload
def finite_number(value: Any, kind: type[int], low: float = ..., high: float = ...) -> int | None: ...
@overload
def finite_number(
    value: Any, kind: type[float] = ..., low: float = ..., high: float = ...
) -> float | None: ...
def finite_number(
    value: Any, kind: Callable[[float], Any] = float, low: float = 0.0, high: float = MAX_NUMBER
) -> Any:
    """``value`` as ``kind`` (float or int) when it is a finite number in ``[low, high]``.

    Numbers written as strings ("181") are read too: the gateway is not known to send them, and
    the official clients accept them. Booleans, NaN, infinities, huge ints and junk read as None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        if len(value) > 40:
            return None
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):
        if not low <= value <= high:
            return None
        return kind(value)
    if not isinstance(value, float) or not math.isfinite(value) or not low <= value <= high:
        return None
    if kind is int:
        if value != int(value):
            return None
        return int(value)
    return kind(value)


def items(value: Any) -> list[Any]:
    """A list field as a list (a comma-separated string is split), at most ``MAX_ITEMS`` items."""
    if value is None:
        return []
    if isinstance(value, list):
        return value[:MAX_ITEMS]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",", MAX_ITEMS)[:MAX_ITEMS] if v.strip()]
    return [value]


def text_items(value: Any) -> list[str]:
    """A list field of short texts (sender IDs, prefixes, numbers); other items are left out."""
    out = []
    for item in items(value):
        text = one_line(item, 100)
        if text:
            out.append(text)
    return out


def msg_id(value: Any) -> str | None:
    """A message ID, when it looks like one (letters, digits and ``_.:-``, up to 100)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**30:
        value = str(value)
    if isinstance(value, str) and _MSG_ID.fullmatch(value):
        return value
    return None


def error_code(value: Any) -> str | None:
    """An error code such as ``ERR013``, when the value is one."""
    if isinstance(value, str) and _CODE.fullmatch(value):
        return value
    return None


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def send_result(index: int, numbers: list[str], data: dict[str, Any]) -> BatchResult:
    """The batch of a send's OK answer: "sent" when the answer reads, else "uncertain" (the gateway
    said OK, so it may well have sent, but a charge or msg-id we cannot read is no record)."""
    from airflow_provider_kwtsms.send.results import SENT, UNCERTAIN, BatchResult

    msg_id_ = msg_id(data.get("msg-id"))
    points = finite_number(data.get("points-charged"), int)
    optional = {
        name: (data.get(name), finite_number(data.get(name), kind))
        for name, kind in (("balance-after", float), ("unix-timestamp", int), ("numbers", int))
    }
    unreadable = [name for name, (raw, value) in optional.items() if raw is not None and value is None]
    unreadable += [name for name, value in (("msg-id", msg_id_), ("points-charged", points)) if value is None]
    if unreadable or points is None:  # points is checked above; this tells the type checker too
        return BatchResult(
            index=index,
            numbers=list(numbers),
            state=UNCERTAIN,
            error_code="BAD_ANSWER",
            error_description=f"the gateway answered OK, but {', '.join(unreadable)} cannot be read "
            "(missing, not a number, or out of range); the batch may have been sent",
            may_have_reached_server=True,
        )
    balance_after = optional["balance-after"][1]
    return BatchResult(
        index=index,
        numbers=list(numbers),
        state=SENT,
        msg_id=msg_id_,
        points_charged=points,
        balance_after=balance_after,
        unix_timestamp=_whole(optional["unix-timestamp"][1]),
        numbers_accepted=_whole(optional["numbers"][1]),
    )
