"""Smart encoding: look-alike characters sent as their GSM-7 forms, so a text stays GSM-7.

One curly apostrophe pasted from a document makes a whole message UCS-2: 70 characters a page
instead of 160, two to three times the credits for the same words. When **every** character
outside GSM-7 has a faithful GSM-7 form (the table below), the text is sent in that form; when
any character has none (Arabic, Chinese, an accented letter GSM-7 lacks), the text is sent
exactly as written, as UCS-2: a partial conversion would save nothing and change the text. The
GSM-7 form is never used when it would take more pages (an ellipsis becomes three characters, so
a text full of them could grow); then too the text is left as written.

The table keeps only replacements a reader would not notice: quotes, apostrophes and primes,
dashes and minus signs, the ellipsis, bullets, the many Unicode spaces, fullwidth ASCII, a few
symbols. No look-alike becomes ``<`` or ``>``, and a conversion that would make an HTML tag (the
gateway refuses those) is not made. Sources: the Unicode character database (names and
compatibility decompositions of the fullwidth forms and spaces), GSM 03.38 (the target
alphabet) and the look-alike lists that Twilio's Smart Encoding and Telnyx publish.
``docs/message-text.md`` shows the table.

Linear: one dictionary lookup per character.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_kwtsms.text.message import GSM7_BASIC, GSM7_EXTENDED, contains_html, measure_message

_QUOTES = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark (the apostrophe of word processors)
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u2035": "'",  # reversed prime
    "\u02bc": "'",  # modifier letter apostrophe
    "\u02b9": "'",  # modifier letter prime
    "\u2039": "'",  # single left-pointing angle quotation mark (not "<": that could make a tag)
    "\u203a": "'",  # single right-pointing angle quotation mark
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u2036": '"',  # reversed double prime
    "\u00ab": '"',  # left-pointing double angle quotation mark
    "\u00bb": '"',  # right-pointing double angle quotation mark
}
_DASHES = {
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\ufe58": "-",  # small em dash
    "\ufe63": "-",  # small hyphen-minus
}
_SPACES = {
    **{chr(c): " " for c in range(0x2000, 0x200B)},  # en quad ... hair space (thin, figure ...)
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
}
_OTHERS = {
    "\u2026": "...",  # horizontal ellipsis
    "\u2022": "-",  # bullet
    "\u2023": "-",  # triangular bullet
    "\u2043": "-",  # hyphen bullet
    "\u2219": "-",  # bullet operator
    "\u00b7": "-",  # middle dot
    "\u2044": "/",  # fraction slash
    "\u2215": "/",  # division slash
    "\u02c6": "^",  # modifier letter circumflex accent
    "\u02dc": "~",  # small tilde
    "\u2217": "*",  # asterisk operator
}

_GSM7 = GSM7_BASIC | GSM7_EXTENDED
# No look-alike ever becomes "<" or ">": those are what make an HTML tag, which the gateway
# refuses (ERR027), and a fullwidth "＜b＞" is no tag while "<b>" is one. Such a character has no
# GSM-7 form here, so a text holding one is sent as written.
_ANGLE_BRACKETS = frozenset("<>")
# Fullwidth ASCII (U+FF01-U+FF5E) maps to ASCII, where the ASCII character is itself GSM-7.
_FULLWIDTH = {
    chr(c + 0xFEE0): chr(c) for c in range(0x21, 0x7F) if chr(c) in _GSM7 and chr(c) not in _ANGLE_BRACKETS
}

LOOKALIKES: dict[str, str] = {**_QUOTES, **_DASHES, **_SPACES, **_OTHERS, **_FULLWIDTH}
assert all(c in _GSM7 for form in LOOKALIKES.values() for c in form)  # every form is GSM-7
assert not any(_ANGLE_BRACKETS & set(form) for form in LOOKALIKES.values())  # no form makes a tag


@dataclass(frozen=True)
class SmartText:
    """The text to send, how many characters were replaced to keep it GSM-7, and the pages saved
    per recipient (0 and 0 when the text is sent as written)."""

    text: str
    replaced: int = 0
    pages_saved: int = 0


def smart_encode(text: str) -> SmartText:
    """``text`` in GSM-7 form when every character outside GSM-7 has a look-alike; else unchanged.

    >>> smart_encode("It’s ready – pick up at 5…")
    SmartText(text="It's ready - pick up at 5...", replaced=3, pages_saved=0)
    >>> smart_encode("طلبك جاهز – شكراً").replaced  # Arabic has no GSM-7 form: left exactly as is
    0
    """
    out: list[str] = []
    replaced = 0
    for char in text:
        if char in _GSM7:
            out.append(char)
            continue
        form = LOOKALIKES.get(char)
        if form is None:
            return SmartText(text)
        out.append(form)
        replaced += 1
    if not replaced:
        return SmartText(text)
    converted = "".join(out)
    if contains_html(converted) and not contains_html(text):
        # The text's own brackets around a converted letter ("<ｂ>" -> "<b>") would make a tag.
        return SmartText(text)
    saved = measure_message(text).pages - measure_message(converted).pages
    return SmartText(converted, replaced, saved) if saved >= 0 else SmartText(text)
