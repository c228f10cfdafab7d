"""The gateway's rules that need no state: reading request fields, judging the text, checking numbers.

Stdlib only (no phonenumbers): the sandbox must judge numbers the way a plain server would,
so the client's own validation is tested against an independent implementation.

The field sizes are v4.1's (``constants``). The document gives no error code for a field that is
too long, so each is answered with the code the gateway's own lookup would reach: a username or
password longer than any account's (15, 30) finds no account, ERR003; a sender longer than any
sender ID (11) is not registered, ERR008; a msgid that is not 32 characters names no message,
ERR029; a ``mobile`` field over 2,500 characters is too many numbers for one request, ERR007 (the
code of the other per-request limit, 200 numbers, and its fix: smaller batches).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_kwtsms.constants import FIELD_LIMITS, MAX_BATCH, MAX_MOBILE_CHARS
from airflow_provider_kwtsms.errors import ERRORS
from airflow_provider_kwtsms.text.message import MessageInfo, contains_html, measure_message

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

MAX_NUMBERS = MAX_BATCH  # numbers per send (ERR007 above)
KUWAIT = "965"
KUWAIT_MOBILE_FIRST_DIGITS = "4569"
MIN_DIGITS, MAX_DIGITS = 7, 15  # E.164 numbers have at most 15 digits

# HTTP status of each error body in the "4xx" error-status mode (the default mode answers 200,
# as the JSON API mostly does; see docs/sandbox.md).
_STATUS_4XX = {
    "ERR001": 403,
    "ERR003": 401,
    "ERR004": 403,
    "ERR005": 403,
    "ERR010": 402,
    "ERR011": 402,
    "ERR019": 404,
    "ERR020": 404,
    "ERR021": 404,
    "ERR022": 404,
    "ERR024": 403,
    "ERR029": 404,
    "ERR030": 409,
    "ERR033": 403,
}


class ApiError(Exception):
    """A kwtSMS error answer: ``code`` from the error table, with a description."""

    def __init__(self, code: str, description: str | None = None) -> None:
        self.code = code
        self.description = description or ERRORS[code].description
        super().__init__(f"{code}: {self.description}")


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` holds a UTF-16 surrogate on its own: it cannot be encoded, so it can
    neither be sent nor shown (a JSON ``"\\ud800"``, a UTF-7 or UTF-16 e-mail body can carry one)."""
    return _LONE_SURROGATE.search(text) is not None


def _refuse_unencodable(name: str, text: str) -> None:
    if has_lone_surrogate(text):
        raise ApiError(
            "ERR002",
            f"Parameter {name} holds a lone UTF-16 surrogate (such as \\ud800), which cannot be "
            "encoded; send valid Unicode text.",
        )


def one_line(text: str) -> str:
    """``text`` for a line-based answer (legacy text, SMTP replies): every kind of line break
    that ``str.splitlines`` knows (\\n \\r \\v \\f \\x1c-\\x1e \\x85 \\u2028 \\u2029) becomes a space,
    so an echoed value can never forge a line of its own."""
    return " ".join(text.splitlines()) if any(c in _LINE_BREAKS for c in text) else text


_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def shown(value: object) -> str:
    """A value quoted in an error message: short, ASCII (so always encodable, even a lone
    surrogate), and never a huge number turned into text (slow, and refused past 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**18:
        return "a number with more than 18 digits"
    return ascii(value)[:40]


def error_http_status(code: str, mode: str) -> int:
    """The HTTP status carrying an error body: always 200 in mode "200", else 4xx by code."""
    if mode == "200":
        return 200
    return _STATUS_4XX.get(code, 400)


def text_field(fields: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field; numbers are accepted as their text. Missing or blank -> ERR002."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ApiError("ERR002", f"A required parameter is missing: {name}.")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ApiError("ERR002", f"Parameter {name} must be text, got {type(value).__name__}.")
    text = str(value)
    _refuse_unencodable(name, text)
    return text


def credentials(fields: dict[str, Any]) -> tuple[str, str]:
    """``username`` and ``password`` (missing -> ERR002); longer than v4.1's 15 and 30 characters
    -> ERR003, as no account can hold them."""
    username = text_field(fields, "username") or ""  # required: never None
    password = text_field(fields, "password") or ""
    if len(username) > FIELD_LIMITS["username"] or len(password) > FIELD_LIMITS["password"]:
        raise ApiError(
            "ERR003",
            f"Authentication error: a username has at most {FIELD_LIMITS['username']} characters "
            f"and a password at most {FIELD_LIMITS['password']}.",
        )
    return username, password


def sender_field(fields: dict[str, Any]) -> str:
    """``sender`` (missing -> ERR002); longer than v4.1's 11 characters -> ERR008: no sender ID
    that long can be registered."""
    sender = text_field(fields, "sender") or ""
    if len(sender) > FIELD_LIMITS["sender"]:
        raise ApiError(
            "ERR008",
            f"The sender ID is {len(sender)} characters long; a sender ID has at most "
            f"{FIELD_LIMITS['sender']}.",
        )
    return sender


def message_field(fields: dict[str, Any]) -> str:
    """The message: missing -> ERR002, present but blank -> ERR009."""
    if "message" not in fields or fields["message"] is None:
        raise ApiError("ERR002", "A required parameter is missing: message.")
    value = fields["message"]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ApiError("ERR002", f"Parameter message must be text, got {type(value).__name__}.")
    text = str(value)
    _refuse_unencodable("message", text)
    if not text.strip():
        raise ApiError("ERR009")
    return text


def test_flag(fields: dict[str, Any]) -> bool:
    """``test``: "1"/1/true means test; absent, "0"/0/false means live."""
    value = fields.get("test", "0")
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise ApiError("ERR002", f"Parameter test must be 1 or 0, got {str(value)[:20]!r}.")


def mobile_list(fields: dict[str, Any]) -> list[str]:
    """``mobile`` as a list of raw entries: a comma-separated string (or, leniently, a list).

    More than 2,500 characters (a list: once joined by commas) -> ERR007, before it is split."""
    value = fields.get("mobile")
    if isinstance(value, (list, tuple)):
        if not all(isinstance(item, (str, int)) and not isinstance(item, bool) for item in value):
            raise ApiError("ERR002", "Parameter mobile must be comma-separated numbers.")
        entries = [str(item) for item in value]
        _mobile_fits(sum(map(len, entries)) + len(entries) - 1)
        for entry in entries:
            _refuse_unencodable("mobile", entry)
    else:
        text = text_field(fields, "mobile")
        _mobile_fits(len(text or ""))
        entries = text.split(",") if text else []
    entries = [entry.strip() for entry in entries if entry.strip()]
    if not entries:
        raise ApiError("ERR002", "A required parameter is missing: mobile.")
    return entries


def _mobile_fits(length: int) -> None:
    if length > MAX_MOBILE_CHARS:
        raise ApiError(
            "ERR007",
            f"Parameter mobile is {length} characters long; it holds at most {MAX_MOBILE_CHARS} "
            f"(and {MAX_NUMBERS} numbers): send fewer numbers at a time.",
        )


@dataclass
class SendDraft:
    """A send request read and judged without the gateway's state (and so outside its lock).

    ``error`` is the first field error (raised after authentication, as before); ``text_error``
    is ERR027 or ERR012 (raised after the sender and number checks, where the gateway puts them).
    """

    error: ApiError | None = None
    sender: str = ""
    entries: list[str] = field(default_factory=list)
    text: str = ""
    test: bool = False
    text_error: ApiError | None = None
    info: MessageInfo | None = None
    stuck: bool = False


def text_limit(max_pages: int) -> int:
    """No text of more characters fits in ``max_pages`` pages, in either encoding.

    Every character takes at least one unit: 160 GSM-7 septets in one page, 153 a page once
    split (UCS-2: 70 and 67, smaller still). So a longer text is refused (ERR012) unread.
    """
    return max(160, 153 * max_pages)


def read_send(fields: dict[str, Any], max_pages: int) -> SendDraft:
    """The send's fields and the verdict on its text; never raises ApiError."""
    try:
        sender = sender_field(fields)
        entries = mobile_list(fields)
        text = message_field(fields)
        test = test_flag(fields)
    except ApiError as error:
        return SendDraft(error=error)
    draft = SendDraft(sender=sender, entries=entries, text=text, test=test)
    # Length first: the regexes and the cleaning below never see more than a few pages of text.
    limit = text_limit(max_pages)
    if len(text) > limit:
        draft.text_error = ApiError(
            "ERR012",
            f"The message is too long: {len(text)} characters, more than {max_pages} pages can "
            f"hold (at most {limit} characters).",
        )
        return draft
    if contains_html(text):
        draft.text_error = ApiError("ERR027")
        return draft
    info = measure_message(text, max_pages)
    if info.over_limit:
        draft.text_error = ApiError(
            "ERR012", f"The message is too long: {info.pages} pages, the limit is {max_pages}."
        )
        return draft
    draft.info = info
    draft.stuck = sticks_in_queue(text)  # charged, answered OK, and never delivered
    return draft


# What the gateway's documentation says makes a message stick in its queue: "emoji and hidden
# characters". Emoji are read as the Unicode blocks kwtSMS's own clients name when they describe
# what sticks (not our cleaner's wider list: a client that sends U+2B50 "⭐" is not held here);
# "hidden control characters" as they describe them: format characters (zero-width space and
# joiners, word joiner, soft hyphen, byte-order mark, bidi controls), control characters other
# than line ends and tab, and the object replacement character.
_EMOJI_BLOCKS = (
    (0x1F000, 0x1F0FF),  # Mahjong Tiles, Domino Tiles, Playing Cards
    (0x1F1E0, 0x1F1FF),  # regional indicators (flags)
    (0x1F300, 0x1F5FF),  # Miscellaneous Symbols and Pictographs
    (0x1F600, 0x1F64F),  # Emoticons
    (0x1F680, 0x1F6FF),  # Transport and Map Symbols
    (0x1F700, 0x1F8FF),  # Alchemical Symbols, Geometric Shapes Extended, Supplemental Arrows-C
    (0x1F900, 0x1FAFF),  # Supplemental Symbols and Pictographs, Chess, Extended-A
    (0x2600, 0x27BF),  # Miscellaneous Symbols, Dingbats
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
    (0x20E3, 0x20E3),  # combining enclosing keycap
    (0xE0000, 0xE007F),  # tags (subdivision flags)
)
_NOT_HIDDEN = frozenset("\n\r\t")


def sticks_in_queue(text: str) -> bool:
    """True when the real gateway, by its documentation, would hold ``text`` in the queue."""
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            if char not in _NOT_HIDDEN:
                return True
        elif code < 0xAD:
            continue  # the common case, ASCII and Latin-1 letters: nothing to look up
        elif (
            code == 0xFFFC
            or unicodedata.category(char) == "Cf"
            or (code >= 0x20E3 and any(low <= code <= high for low, high in _EMOJI_BLOCKS))
        ):
            return True
    return False


def number_format_ok(number: str) -> bool:
    """Digits only, 7 to 15 of them; Kuwait numbers: 965 + 8 digits starting with 4, 5, 6 or 9.

    Like the real gateway, no "+", "00", spaces or dots: the client must normalise first.
    """
    if not (number.isascii() and number.isdigit() and MIN_DIGITS <= len(number) <= MAX_DIGITS):
        return False
    if number.startswith("00"):
        return False
    if number.startswith(KUWAIT):
        local = number[len(KUWAIT) :]
        return len(local) == 8 and local[0] in KUWAIT_MOBILE_FIRST_DIGITS
    return True


def covered(number: str, prefixes: list[str]) -> bool:
    return any(number.startswith(prefix) for prefix in prefixes)


@dataclass
class NumberCheck:
    """The numbers of one request sorted the way ``validate`` reports them."""

    ok: list[str]  # valid and routable (deduplicated, in order)
    er: list[str]  # format error
    nr: list[str]  # valid, but the account has no coverage for its country


def check_numbers(entries: list[str], prefixes: list[str]) -> NumberCheck:
    result = NumberCheck([], [], [])
    seen: set[str] = set()
    for number in entries:
        if number in seen:
            continue  # the same number twice in one request is sent (and charged) once
        seen.add(number)
        if not number_format_ok(number):
            result.er.append(number)
        elif not covered(number, prefixes):
            result.nr.append(number)
        else:
            result.ok.append(number)
    return result
