"""Removing a secret from text that came back from the network.

A gateway, proxy or SMTP relay may echo the request it received, and the request holds the API
password. Such text ends up in exceptions, log lines, XCom summaries and pickles, so it is
scrubbed once, where it enters, by ``Redactor.scrub``, and only then cut to length (cutting first
could leave a piece of the password that no longer matches).

What is removed, in every form an echo can take (raw, JSON-escaped with and without
``ensure_ascii``, URL-encoded with ``%20`` or ``+`` and either hex case, HTML-escaped):

- the whole password;
- any fragment of ``FRAGMENT`` (4) or more consecutive characters of one of those forms, since a
  gateway or relay may itself cut its echo, and a long piece of a password is nearly as useful as
  the whole. A password shorter than that is removed only whole.

Escapes applied to only some characters are found too, by reading the text decoded as well: a
JSON view (``\\uXXXX`` in either hex case, surrogate pairs, ``\\/``, ``\\"`` and the other short
escapes: PHP's ``json_encode`` with its ``JSON_HEX_*`` flags, Laravel, Symfony) and a URL view
(``%XX`` in either case, UTF-8 sequences, ``+`` for a space: ``urlencode``'s ``%7E``, RFC 1738 or
3986, any subset of characters encoded). The whole password and its fragments are searched in each
view, and a match masks the original text it was decoded from. Not covered (documented limits in
docs/client.md): another letter case, another Unicode normalization (NFD), base64 or any other
encoding, HTML numeric entities beyond ``html.escape``'s, two encodings stacked (``%255C``, a
URL-encoded echo inside JSON escapes).

Fragments made only of escape machinery (``\\u00f6``, ``%C3%B6``, ``&#34;``) are not fragments of
the secret and are left alone, or every escaped character in an answer would be masked.

Over-scrubbing is the price: an unrelated run of 4 characters that also occurs in the password
is masked too. Error text loses a little; nothing secret leaks.

The work is linear in the text: one decoding pass per view, one ``str.find`` scan per fragment of
the password and view (a fixed number, bounded by the password's length), then one pass over the
matches.
"""

from __future__ import annotations

import html
import json
from urllib.parse import quote, quote_plus

MASK = "***"
FRAGMENT = 4
_ESCAPE_CHARS = frozenset("\\%&#;+0123456789abcdefABCDEFuUxX")


def is_escape_machinery(fragment: str) -> bool:
    """True for a piece of an escape sequence (``\\u00``, ``%C3%``) rather than of the secret."""
    # Pieces of the secret itself that look like this are still found: the raw form keeps them all.
    return all(c in _ESCAPE_CHARS for c in fragment)


def secret_forms(secret: str) -> list[str]:
    """The ways ``secret`` can appear in echoed text, longest first, without repeats."""
    if not secret:
        return []
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret, safe=""),
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    # PHP (Laravel, Symfony): json_encode escapes "/" by default and, with its JSON_HEX_* flags,
    # quote, tag, ampersand and apostrophe as upper-case \u escapes; urlencode encodes "~".
    jsons = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    slashed = {form.replace("/", "\\/") for form in jsons}
    forms |= slashed | {_php_hex(form) for form in slashed}
    forms |= {_upper_unicode_hex(form) for form in forms if "\\u" in form}
    forms |= {form.replace("~", "%7E") for form in forms if "%" in form}
    forms |= {_lower_hex(form) for form in forms if "%" in form}
    return sorted(forms, key=len, reverse=True)


def _php_hex(json_form: str) -> str:
    # JSON_HEX_QUOT | JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS, after json_encode's own escapes.
    form = json_form.replace('\\"', "\\u0022")
    for char, escape in (("<", "\\u003C"), (">", "\\u003E"), ("&", "\\u0026"), ("'", "\\u0027")):
        form = form.replace(char, escape)
    return form


def _upper_unicode_hex(text: str) -> str:
    # \u00f6 as \u00F6: encoders differ in the case of their hex digits.
    parts = text.split("\\u")
    return parts[0] + "".join("\\u" + part[:4].upper() + part[4:] for part in parts[1:])


def _lower_hex(text: str) -> str:
    # Some encoders write %2f rather than %2F.
    parts = text.split("%")
    return parts[0] + "".join("%" + part[:2].lower() + part[2:] for part in parts[1:])


class Redactor:
    """Scrubs one secret (see the module doc). ``Redactor("")`` scrubs nothing."""

    __slots__ = ("_fragments", "_longest", "_raw_fragments", "_secret", "_wholes")

    def __init__(self, secret: str | None) -> None:
        forms = secret_forms(secret or "")
        self._wholes = forms
        self._longest = len(forms[0]) if forms else 0
        fragments: set[str] = set()
        for form in forms:
            if len(form) >= FRAGMENT:
                pieces = (form[i : i + FRAGMENT] for i in range(len(form) - FRAGMENT + 1))
                fragments.update(
                    piece for piece in pieces if form == secret or not is_escape_machinery(piece)
                )
        self._fragments = frozenset(fragments)
        self._secret = secret or ""
        raw = self._secret
        self._raw_fragments = frozenset(raw[i : i + FRAGMENT] for i in range(len(raw) - FRAGMENT + 1))

    def __repr__(self) -> str:
        return "Redactor(***)"

    def __reduce__(self) -> tuple[object, ...]:  # never pickle the fragments: they are the secret
        raise TypeError("a Redactor holds a secret and cannot be pickled")

    def scrub(self, text: str, limit: int | None = None) -> str:
        """``text`` without the secret; then, when ``limit`` is given, cut to ``limit`` characters.

        Only the first ``limit`` characters plus one password's length are looked at, so a huge
        body costs no more than its kept part, and nothing cut at the limit can hold a piece."""
        if limit is not None:
            text = text[: limit + self._longest + 1]
        if self._wholes:
            text = self._scrub(text)
        if limit is not None and len(text) > limit:
            text = text[:limit]
        return text

    def _scrub(self, text: str) -> str:
        # Whole forms first, so a whole password becomes one mask rather than a run of them.
        for form in self._wholes:
            if form in text:
                text = text.replace(form, MASK)
        spans = _find(text, self._fragments, FRAGMENT)
        # Then the decoded views of the same text, for escapes applied to some characters only.
        for decode, marker in ((_json_view, "\\"), (_url_view, "%")):
            if marker not in text and not (marker == "%" and "+" in text):
                continue
            view, starts, ends = decode(text)
            found = _find(view, {self._secret}, len(self._secret))
            if len(self._secret) >= FRAGMENT:
                found += _find(view, self._raw_fragments, FRAGMENT)
            spans += [(starts[a], ends[b - 1]) for a, b in found]
        return _masked(text, spans)


def _find(text: str, needles: frozenset[str] | set[str], width: int) -> list[tuple[int, int]]:
    """The spans of every occurrence of the ``width``-long ``needles`` in ``text``."""
    spans: list[tuple[int, int]] = []
    for needle in needles:
        start = text.find(needle)
        while start != -1:
            spans.append((start, start + width))
            start = text.find(needle, start + 1)
    return spans


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each run of overlapping or touching ``spans`` replaced by one mask."""
    if not spans:
        return text
    spans.sort()
    pieces: list[str] = []
    kept_from = 0
    span_start, span_end = spans[0]
    for start, end in spans[1:]:
        if start <= span_end:  # overlapping or touching: one masked run
            span_end = max(span_end, end)
            continue
        pieces += [text[kept_from:span_start], MASK]
        kept_from = span_end
        span_start, span_end = start, end
    pieces += [text[kept_from:span_start], MASK, text[span_end:]]
    return "".join(pieces)


# A decoded view: its text, and for each of its characters the start and end of what it was
# decoded from in the original text.
_View = tuple[str, list[int], list[int]]
_HEX = frozenset("0123456789abcdefABCDEF")
_JSON_SHORT = {
    "/": "/",
    '"': '"',
    "\\": "\\",
    "'": "'",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def _hex_at(text: str, i: int, count: int) -> int | None:
    piece = text[i : i + count]
    if len(piece) == count and all(c in _HEX for c in piece):
        return int(piece, 16)
    return None


def _json_view(text: str) -> _View:
    """``text`` with JSON-style backslash escapes decoded (one pass)."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, size = 0, len(text)
    while i < size:
        char, end = text[i], i + 1
        if char == "\\" and i + 1 < size:
            nxt = text[i + 1]
            code = _hex_at(text, i + 2, 4) if nxt == "u" else None
            if code is not None:
                char, end = chr(code), i + 6
                low = _hex_at(text, i + 8, 4) if text[i + 6 : i + 8] == "\\u" else None
                if 0xD800 <= code < 0xDC00 and low is not None and 0xDC00 <= low < 0xE000:
                    char, end = chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), i + 12
            elif nxt in _JSON_SHORT:
                char, end = _JSON_SHORT[nxt], i + 2
        out.append(char)
        starts.append(i)
        ends.append(end)
        i = end
    return "".join(out), starts, ends


def _url_view(text: str) -> _View:
    """``text`` with ``%XX`` (UTF-8 sequences as one character) and ``+`` decoded (one pass)."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, size = 0, len(text)
    while i < size:
        char, end = (" " if text[i] == "+" else text[i]), i + 1
        lead = _hex_at(text, i + 1, 2) if text[i] == "%" else None
        if lead is not None:
            count = (
                1 if lead < 0x80 else 2 if lead >= 0xC2 and lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4
            )
            raw = bytearray([lead])
            j = i + 3
            while len(raw) < count and text[j : j + 1] == "%" and (b := _hex_at(text, j + 1, 2)) is not None:
                raw.append(b)
                j += 3
            try:
                char, end = raw.decode("utf-8"), j
            except UnicodeDecodeError:
                char, end = chr(lead), i + 3  # not UTF-8: the byte as Latin-1, one escape
        out.append(char)
        starts.append(i)
        ends.append(end)
        i = end
    return "".join(out), starts, ends
