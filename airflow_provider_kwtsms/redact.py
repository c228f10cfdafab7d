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

Fragments made only of escape machinery (``\\u00f6``, ``%C3%B6``, ``&#34;``) are not fragments of
the secret and are left alone, or every escaped character in an answer would be masked.

Over-scrubbing is the price: an unrelated run of 4 characters that also occurs in the password
is masked too. Error text loses a little; nothing secret leaks.

The work is linear in the text: one ``str.find`` scan per fragment of the password (a fixed
number, bounded by the password's length), then one pass over the matches.
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
    forms |= {_lower_hex(form) for form in forms if "%" in form}
    return sorted(forms, key=len, reverse=True)


def _lower_hex(text: str) -> str:
    # Some encoders write %2f rather than %2F.
    parts = text.split("%")
    return parts[0] + "".join("%" + part[:2].lower() + part[2:] for part in parts[1:])


class Redactor:
    """Scrubs one secret (see the module doc). ``Redactor("")`` scrubs nothing."""

    __slots__ = ("_fragments", "_longest", "_wholes")

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
        spans: list[tuple[int, int]] = []
        for fragment in self._fragments:
            start = text.find(fragment)
            while start != -1:
                spans.append((start, start + FRAGMENT))
                start = text.find(fragment, start + 1)
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
