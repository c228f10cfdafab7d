"""How many leading digits decide whether a number matches a metadata pattern.

One job: reading libphonenumber's regular expressions with the standard library's pattern parser
(``re._parser``, Python 3.11+) to find how many trailing characters of every match are "any
digit". The bulk engine (``_phone_engine``) keys its verdict tables by the digits before them.
"""

from __future__ import annotations

import re._parser as sre  # the pattern parser, to see how many trailing digits a pattern leaves free
from functools import cache
from typing import Any


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
    low: int  # re._parser has no type stub: what it gives is Any, and these are its widths and counts
    high: int
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


def deciding_depth(patterns: list[str], size: int) -> int:
    """The number of leading digits that decide whether a number of ``size`` digits matches each
    of the patterns (at least 1)."""
    return max(1, size - min((_pattern_free_tail(p, size) for p in patterns), default=size))


@cache
def _pattern_free_tail(pattern: str, size: int) -> int:
    parsed = parse_pattern(pattern)
    if parsed is None or not is_plain(parsed):
        return 0  # look-arounds, anchors, back-references...: the whole number may decide
    return min(size, _free_tail(parsed, size))


_PLAIN_OPS = frozenset(
    (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.MAX_REPEAT, sre.MIN_REPEAT, sre.SUBPATTERN, sre.BRANCH)
)


def is_plain(items: Any) -> bool:
    """Whether a parsed pattern only consumes characters, each item looking at its own: then the
    items before the free tail cannot look into it."""
    for op, arg in items:
        if op not in _PLAIN_OPS:
            return False
        if op is sre.MAX_REPEAT or op is sre.MIN_REPEAT:
            if not is_plain(arg[2]):
                return False
        elif op is sre.SUBPATTERN:
            if not is_plain(arg[-1]):
                return False
        elif op is sre.BRANCH and not all(is_plain(branch) for branch in arg[1]):
            return False
    return True


@cache
def parse_pattern(pattern: str) -> Any:
    try:
        return sre.parse(pattern)
    except Exception:  # an unexpected construct: the whole number decides
        return None
