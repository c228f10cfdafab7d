"""Message text: cleaning, encoding, length and pages, as kwtSMS counts them.

kwtSMS sends text that fits the GSM-7 alphabet as GSM-7 (160 characters in one page, 153 per
page once split) and anything else as UCS-2 (70 in one page, 67 per page once split).
Credits charged = pages x numbers, so the page count must be exact. The sandbox uses this
module too, so the client's estimate and the (local) gateway's charge agree.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from airflow_provider_kwtsms.constants import DEFAULT_MAX_PAGES as DEFAULT_MAX_PAGES  # re-exported
from airflow_provider_kwtsms.errors import KwtSMSInputError

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The GSM 03.38 default alphabet (without the escape character, which is not text).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each one is sent as escape + character, so it takes two septets.
GSM7_EXTENDED: frozenset[str] = frozenset("^{}\\[~]|€\f")

_PAGE_SIZES = {GSM7: (160, 153), UCS2: (70, 67)}

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")

# Characters nobody sees that make a message stick in the queue or render oddly: BOM, zero-width
# space/joiners, word joiner, soft hyphen, bidi marks, embeddings, overrides and isolates, Arabic
# letter mark, Mongolian vowel separator. (Every other format character is dropped as well.)
_INVISIBLE = frozenset(
    "\ufeff\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\u00ad\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c\u180e"
    "\ufffc"  # object replacement character (a pasted image's placeholder): every official client strips it
)

# Emoji and pictographs, as code-point ranges (inclusive). Kept out of the message because the
# gateway leaves messages holding them stuck in the queue.
_PICTOGRAPH_RANGES = (
    (0x1F000, 0x1FAFF),  # mahjong, cards, enclosed supplements, flags, pictographs, emoticons ...
    (0x1FB00, 0x1FBFF),  # symbols for legacy computing
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats
    (0x2B00, 0x2BFF),  # miscellaneous symbols and arrows (⭐ ⬛ ...)
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x2934, 0x2935),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
    (0x20E3, 0x20E3),  # combining enclosing keycap
    (0xE0000, 0xE007F),  # tags (subdivision flags)
    (0xE0100, 0xE01EF),  # variation selectors supplement
)

# An HTML/XML tag is "<" + one of these bodies + ">": a comment ("!--" ... "--", anything between),
# a declaration ("!" then a letter) or an element ("/"? then a name, optional attributes, "/"?).
# Only a comment may hold "<" or ">"; "x < y and y > z" (space after "<") and "a<b" are not tags.
# The bodies are matched whole (fullmatch) against text already known to hold no angle bracket:
# every quantifier in them stops at the end of that text, so each match is linear in its length.
_TAG_BODY = re.compile(r"![A-Za-z][^<>]*|/?[A-Za-z][A-Za-z0-9:._-]*(?:\s[^<>]*)?/?", re.DOTALL)
_BREAK_BODY = re.compile(r"(?:br|BR|Br|bR)\s*/?")
_ANGLES = re.compile(r"([<>])")
_TAG_OPENING = re.compile(r"<[A-Za-z/!]")
# What _keep() drops from ASCII text: control characters other than newline and tab.
_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _is_pictograph(code: int) -> bool:
    return any(low <= code <= high for low, high in _PICTOGRAPH_RANGES)


def _keep(char: str) -> bool:
    if char in "\n\t":
        return True
    if char in _INVISIBLE:
        return False
    if _is_pictograph(ord(char)):
        return False
    # Cc: control characters; Cf: format (invisible) characters; Cs: lone surrogates, which
    # cannot even be encoded to send.
    return unicodedata.category(char) not in ("Cc", "Cf", "Cs")


def contains_html(text: str) -> bool:
    """True when ``text`` holds an HTML tag (the gateway refuses those with ERR027).

    Exactly when ``clean_message`` would remove something as a tag: the same scan decides both.
    """
    return _scan_tags(text, stop_at_first_tag=True) is None


def _strip_tags(text: str) -> str:
    """``text`` without its tags (``<br>`` becomes a newline); what is left holds no tag."""
    stripped = _scan_tags(text, stop_at_first_tag=False)
    assert stripped is not None
    return stripped


def _scan_tags(text: str, stop_at_first_tag: bool) -> str | None:
    """One left-to-right pass: the text without its tags, or None at the first tag when asked.

    The output is kept as a stack of pieces ("<", ">" or text without angle brackets). When a ">"
    arrives, a tag ending there is removed at once, so removing one tag can complete another
    ("<<b>b>" leaves nothing): the output never holds a tag, whatever the nesting. Each piece is
    pushed once and popped at most once, and the text after the last bracket is read once per
    ">" (then either removed or walled off by the ">" that stays): linear in the input.
    """
    if ">" not in text or _TAG_OPENING.search(text) is None:
        # No tag here: removing one tag can complete another, but only once a first one is found,
        # and every tag starts with "<" then a letter, "/" or "!".
        return text
    parts = _ANGLES.split(text)  # text, bracket, text, bracket, ..., text (texts may be empty)
    out: list[str] = [parts[0]] if parts[0] else []
    angles: list[int] = []  # indices in out of the "<" and ">" pieces
    # Indices of the "<" pieces that open a comment ("<!--"), among those followed by a bracket.
    comments: list[int] = []
    for i in range(1, len(parts), 2):
        if parts[i] == "<":
            _note_comment(out, angles, comments)
            angles.append(len(out))
            out.append("<")
        elif not angles or angles[-1] == len(out) - 1:
            angles.append(len(out))  # nothing between two brackets (or none before): no tag ends here
            out.append(">")
        else:
            start, is_break = _tag_ending_here(out, angles, comments)
            if start is None:
                _note_comment(out, angles, comments)
                angles.append(len(out))
                out.append(">")
            elif stop_at_first_tag:
                return None
            else:
                del out[start:]
                while angles and angles[-1] >= start:
                    angles.pop()
                while comments and comments[-1] >= start:
                    comments.pop()
                if is_break:
                    out.append("\n")
        if parts[i + 1]:
            out.append(parts[i + 1])
    return "".join(out)


def _opens_comment(out: list[str], at: int) -> bool:
    """Whether the "<" at out[at] is followed by "!--" (the pieces after it hold no bracket)."""
    return "".join(piece[:3] for piece in out[at + 1 : at + 4]).startswith("!--")


def _note_comment(out: list[str], angles: list[int], comments: list[int]) -> None:
    """Before a bracket is pushed: record whether the last "<" (now followed by it) opens a comment."""
    if angles:
        last = angles[-1]
        if (
            last + 1 < len(out)
            and out[last + 1][0] == "!"
            and out[last] == "<"
            and (not comments or comments[-1] != last)
            and _opens_comment(out, last)
        ):
            comments.append(last)


def _tag_ending_here(out: list[str], angles: list[int], comments: list[int]) -> tuple[int | None, bool]:
    """(index in out where a tag ending with the ">" about to be pushed starts, whether it is a
    <br>), or (None, False). A comment from the earliest "<!--" wins (as the leftmost match)."""
    if not angles:
        return None, False
    last = angles[-1]
    after = out[last + 1 :]  # text pieces only
    if not after:
        return None, False
    # The last two characters, which may lie in two pieces (when a tag between them was removed).
    ending = after[-1][-2:] if len(after[-1]) > 1 or len(after) == 1 else after[-2][-1:] + after[-1]
    if ending == "--":
        start = comments[0] if comments else last if out[last] == "<" and _opens_comment(out, last) else None
        # "<!---->" is the shortest comment: the "--" closing it cannot be the one opening it.
        if start is not None and (start != last or sum(map(len, after)) >= 5):
            return start, False
    if out[last] != "<":
        return None, False
    body = "".join(after)
    if _TAG_BODY.fullmatch(body) is None:
        return None, False
    return last, _BREAK_BODY.fullmatch(body) is not None


@dataclass(frozen=True)
class CleanedText:
    """The text as it should be sent, and how many emoji, invisible and control characters were
    removed (so that a plan can say so rather than change the text in silence)."""

    text: str
    removed: int = 0


def clean_message(text: str) -> str:
    """The text as it should be sent.

    Arabic-Indic and Persian digits become Latin digits; emoji and pictographs, invisible
    characters (BOM, zero-width, soft hyphen, bidi controls, U+FFFC) and control characters other
    than newline and tab are removed (a carriage return becomes a newline), without leaving a
    double space where an emoji stood between two words; HTML tags are removed (``<br>`` becomes
    a newline) while comparisons such as ``x < y and y > z`` stay. Arabic letters and diacritics
    are kept as they are. Leading and trailing whitespace is trimmed, so a message of only emoji
    or spaces comes out empty. ``clean_text`` also says how many characters were removed.
    """
    return clean_text(text).text


def clean_text(text: str) -> CleanedText:
    """``clean_message`` with the count of emoji, invisible and control characters removed."""
    if not isinstance(text, str):
        raise KwtSMSInputError(
            f"message must be a str, got {type(text).__name__}: give the SMS text as a string"
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_DIGITS)
    if text.isascii():
        # The common case, ASCII, needs only its control characters dropped: one regex, not a loop.
        kept = _ASCII_CONTROLS.sub("", text)
        removed = len(text) - len(kept)
    else:
        kept, removed = _drop_unsendable(text)
    return CleanedText(_strip_tags(kept).strip(), removed)


def _drop_unsendable(text: str) -> tuple[str, int]:
    out: list[str] = []
    removed = 0
    after_removal = False  # the last character looked at was removed
    for char in text:
        if not _keep(char):
            removed += 1
            after_removal = True
            continue
        # "Hi 👋 there" -> "Hi there": a space right after a removal, next to a space, is dropped.
        if not (char == " " and after_removal and out and out[-1] == " "):
            out.append(char)
        after_removal = False
    return "".join(out), removed


@dataclass(frozen=True)
class MessageInfo:
    """How the gateway will see a text: its encoding, length and pages."""

    encoding: str  # "GSM-7" or "UCS-2"
    length: int  # septets for GSM-7 (extension characters count two), UTF-16 units for UCS-2
    pages: int
    max_pages: int
    over_limit: bool  # more pages than max_pages: the gateway answers ERR012
    chars_left_in_page: int  # units still free in the last page


def encoding_of(text: str) -> str:
    """ "GSM-7" when every character is in the GSM-7 alphabet (with its extension), else "UCS-2"."""
    return GSM7 if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text) else UCS2


def _units(text: str, encoding: str) -> list[int]:
    """The size of each character in the encoding (GSM-7 septets or UTF-16 code units)."""
    if encoding == GSM7:
        return [2 if c in GSM7_EXTENDED else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _paginate(units: list[int], single: int, part: int) -> tuple[int, int]:
    """(pages, units left in the last page).

    A character never straddles two parts: an escape pair or a surrogate pair that does not fit
    at the end of a part moves whole to the next one, which can cost a page.
    """
    total = sum(units)
    if total == 0:
        return 0, single
    if total <= single:
        return 1, single - total
    pages, used = 1, 0
    for size in units:
        if used + size > part:
            pages, used = pages + 1, 0
        used += size
    return pages, part - used


def measure_message(text: str, max_pages: int = DEFAULT_MAX_PAGES) -> MessageInfo:
    """Encoding, length and pages of ``text`` as sent (measure the cleaned text)."""
    encoding = encoding_of(text)
    units = _units(text, encoding)
    single, part = _PAGE_SIZES[encoding]
    pages, left = _paginate(units, single, part)
    return MessageInfo(
        encoding=encoding,
        length=sum(units),
        pages=pages,
        max_pages=max_pages,
        over_limit=pages > max_pages,
        chars_left_in_page=left,
    )


def trim_to_pages(text: str, pages: int, keep_end: str = "") -> str:
    """``text`` cut to fit ``pages`` pages, ending with an ellipsis when anything was cut.

    The ellipsis is "…" for UCS-2 text and "..." for GSM-7 text, because "…" is not in GSM-7
    and would switch the whole message to UCS-2 (and so need more pages). ``keep_end`` is put
    after the text and never cut (an alert's try and run after its cut cause): ``text`` is cut
    to leave it room.
    """
    if pages < 1:
        raise KwtSMSInputError(
            f"pages must be at least 1, got {pages!r}: give a whole number of pages, 1 or more"
        )
    if measure_message(text + keep_end).pages <= pages:
        return text + keep_end
    ellipsis = "..." if encoding_of(text + keep_end) == GSM7 else "…"

    def fits(n: int) -> bool:
        return measure_message(text[:n].rstrip() + ellipsis + keep_end).pages <= pages

    low, high = 0, len(text)  # fits(low) holds; find the longest prefix that fits
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ellipsis + keep_end
