"""Strict reading of a JSON request body: one object, or ``BadJson`` saying why not.

A hostile body must get a clear refusal, never a crash, and nothing it carries may poison the
sandbox's state afterwards. So, on top of ``json.loads``:

- the top level must be an object;
- nesting deeper than ``MAX_DEPTH`` is refused (``"[" * 100000`` would hit the recursion limit);
- a repeated key is refused (which one wins differs between parsers);
- ``NaN``, ``Infinity`` and numbers too big for a float are refused, naming the field: JSON has
  no such numbers and one stored would break every later answer;
- a lone UTF-16 surrogate (``"\\ud800"``) anywhere is refused, naming the field: such text
  cannot be encoded, so it could never be sent nor shown. PHP's ``json_decode``, which the real
  gateway most likely uses, refuses such a body too (``JSON_ERROR_UTF16``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from airflow_provider_kwtsms.sandbox.rules import has_lone_surrogate, shown

MAX_DEPTH = 32  # kwtSMS bodies are flat; a few levels are tolerated for lists of numbers


class BadJson(ValueError):
    """The body is not one well-formed JSON object; the message says what is wrong."""


def parse_object(body: bytes) -> dict[str, Any]:
    """The body's object (``{}`` for an empty body), or raises ``BadJson``."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_constant)
    except RecursionError:
        raise BadJson(f"the body is nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    except BadJson:
        raise
    except ValueError as exc:  # JSONDecodeError, and ints over the digit limit
        raise BadJson(str(exc)[:200]) from None
    if not isinstance(parsed, dict):
        raise BadJson(f"the body must be a JSON object, got {type(parsed).__name__}")
    for key, value in parsed.items():
        _check_value(key, value)
    return parsed


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadJson(f"the key {shown(key)} appears twice")
        result[key] = value
    return result


def _constant(name: str) -> float:
    return float(name)  # NaN, Infinity, -Infinity: kept here, refused with the field's name below


def _check_value(field: str, value: object) -> None:
    """Walk one top-level field's value (no recursion: depth is checked here too)."""
    if has_lone_surrogate(field):
        raise BadJson(f"a key holds a lone UTF-16 surrogate ({shown(field)}); send valid Unicode text")
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadJson(f"field {shown(field)} is nested too deeply (the limit is {MAX_DEPTH} levels)")
        if isinstance(item, str):
            if has_lone_surrogate(item):
                raise BadJson(
                    f"field {shown(field)} holds a lone UTF-16 surrogate (such as \\ud800), which "
                    "cannot be encoded; send valid Unicode text"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadJson(
                    f"field {shown(field)} holds {item!r}, which is not a JSON number; send a finite number"
                )
        elif isinstance(item, dict):
            for key, inner in item.items():
                if has_lone_surrogate(key):
                    raise BadJson(f"field {shown(field)} holds a key with a lone UTF-16 surrogate")
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
