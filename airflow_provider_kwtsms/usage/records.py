"""What the usage page reads: XCom rows the provider's tasks wrote, read as untrusted values.

An XCom row is whatever was stored under a key: the page must not break, nor show something
misleading, on a value some other task wrote under the same key, an older summary without a
field, or one from a newer version with more. Every field is read with its type checked,
missing counts are 0, and text is cut to a bound with its line breaks flattened.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The XCom keys the page reads: the operator's summary (``return_value``; ``partial_summary``
# when the send failed part-way), the sensor's reading (``return_value``) and the notifier's
# record of an alert (``ALERT_KEY``).
SUMMARY_KEYS = ("return_value", "partial_summary")
ALERT_KEY = "kwtsms_alert"
READ_KEYS = (*SUMMARY_KEYS, ALERT_KEY)
# A marker every kwtSMS summary and reading carries, for the database's first cut (LIKE): the
# shape check below decides.
SUMMARY_MARKER = "points_charged"
READING_MARKER = "min_balance"

MAX_TEXT = 300  # characters of a reason or name kept (gateway text is untrusted)
MAX_VALUE_CHARS = 2_000_000  # a stored value longer than this is not parsed (a summary is far smaller)
UNNAMED_CONNECTION = ""  # summaries written before the connection was recorded


@dataclass(slots=True)
class Row:
    """One XCom row: where it comes from, when it was written (UTC) and its stored value."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    at: datetime
    value: Any


@dataclass(slots=True)
class Send:
    """One task's send, as its summary says."""

    row: Row
    credits: int
    numbers_sent: int
    failed: int
    uncertain: int
    suppressed: int
    not_attempted: int
    invalid: int
    test: bool
    ok: bool
    connection: str
    balance_after: float | None
    reasons: tuple[str, ...]


@dataclass(slots=True)
class Reading:
    """A balance reading of one connection: from a sensor, a send's answer, or the page."""

    connection: str
    at: datetime
    available: float
    source: str  # "sensor", "send" or "page"


@dataclass(slots=True)
class Alert:
    """One alert the notifier sent (or tried to), to its targets."""

    row: Row
    targets: tuple[str, ...]
    credits: int
    ok: bool
    reason: str


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """``value`` as one line of at most ``limit`` characters (every kind of line break and control
    character becomes a space)."""
    if value is None:
        return ""
    raw = value if isinstance(value, str) else str(value)
    if len(raw) <= limit and raw.isprintable():  # the common case: no line break nor control character
        return raw
    cut = raw[: limit + 1]
    flat = "".join(" " if (ch < " " or ch in "\x7f\x85\u2028\u2029") else ch for ch in cut)
    return flat[:limit] + ("…" if len(cut) > limit else "")


def count(value: Any) -> int:
    """A count: a non-negative whole number, else 0 (missing keys, bools and junk count as none)."""
    if type(value) is int:  # the common case (bool is not int here)
        return value if value > 0 else 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return max(0, int(value))


def number(value: Any) -> float | None:
    """A finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def decoded(value: Any) -> Any:
    """The stored value as Python: Airflow keeps XComs as JSON, some written once more as a JSON
    string (``XComModel.serialize_value``); both are read."""
    if isinstance(value, str | bytes) and len(value) <= MAX_VALUE_CHARS:
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _stored(row: Row) -> dict[str, Any]:
    return _dict(decoded(row.value))


def as_send(row: Row) -> Send | None:
    """The row as a send summary, or None when it is not one (another task's XCom, a dry run)."""
    if row.key not in SUMMARY_KEYS:
        return None
    value = _stored(row)
    counts = value.get("counts")
    if SUMMARY_MARKER not in value or not isinstance(counts, dict) or value.get("dry_run") is True:
        return None
    error, failed, suppressed = value.get("error"), value.get("failed"), value.get("suppressed")
    reasons = _reasons(_dict(error), failed, suppressed) if error or failed or suppressed else ()
    return Send(
        row=row,
        credits=count(value.get("points_charged")),
        numbers_sent=count(value.get("numbers_sent")),
        failed=count(counts.get("failed")),
        uncertain=count(counts.get("uncertain")),
        suppressed=count(counts.get("suppressed")),
        not_attempted=count(counts.get("not_attempted")),
        invalid=count(counts.get("invalid")),
        test=value.get("test") is True,
        ok=value.get("ok") is True,
        connection=text(value.get("connection"), 250),
        balance_after=number(value.get("balance_after")),
        reasons=reasons,
    )


def _reasons(error: dict[str, Any], failed: Any, suppressed: Any) -> tuple[str, ...]:
    """Why a send did not reach everyone: its error, the failed numbers' codes, the suppressed
    numbers' reasons (counted, never the numbers)."""
    reasons: list[str] = []
    if error:
        what = text(error.get("code"), 40)
        says = text(error.get("description"))
        action = text(error.get("action"))
        reasons.append(": ".join(part for part in (what, says) if part) + (f" ({action})" if action else ""))
    codes: dict[str, int] = {}
    for item in failed[:1000] if isinstance(failed, list) else ():
        code = text(_dict(item).get("code"), 40) or "no code"
        codes[code] = codes.get(code, 0) + 1
    reasons.extend(f"{n} failed with {code}" for code, n in sorted(codes.items()))
    why: dict[str, int] = {}
    for item in suppressed[:1000] if isinstance(suppressed, list) else ():
        reason = text(_dict(item).get("reason")) or "suppressed"
        why[reason] = why.get(reason, 0) + 1
    reasons.extend(f"{n} suppressed: {reason}" for reason, n in sorted(why.items()))
    return tuple(reasons[:10])


def as_reading(row: Row) -> Reading | None:
    """The row as a BalanceSensor reading (its return value), or None."""
    if row.key != "return_value":
        return None
    value = _stored(row)
    available = number(value.get("available"))
    if available is None or READING_MARKER not in value or SUMMARY_MARKER in value:
        return None
    return Reading(text(value.get("connection"), 250), row.at, available, "sensor")


def as_alert(row: Row) -> Alert | None:
    """The row as the notifier's record of an alert, or None."""
    if row.key != ALERT_KEY:
        return None
    value = _stored(row)
    targets = value.get("targets")
    if not isinstance(targets, list):
        return None
    error = _dict(value.get("error"))
    reason = ": ".join(p for p in (text(error.get("code"), 40), text(error.get("description"))) if p)
    return Alert(
        row=row,
        targets=tuple(
            text(t, 40) for t in targets[:50] if isinstance(t, str | int) and not isinstance(t, bool)
        ),
        credits=count(value.get("points_charged")),
        ok=value.get("ok") is True,
        reason=reason,
    )


def alert_record(summary: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """What the notifier writes under ``ALERT_KEY`` for one alert (``as_alert`` reads it back),
    from its send's summary (``SendResult.to_dict``): the numbers alerted, whether it went, its
    credits and msg-ids, and the error's code and text (no action, no numbers that failed)."""
    error = _dict(summary.get("error"))
    return {
        "targets": list(targets),
        "ok": summary.get("ok") is True,
        "points_charged": count(summary.get("points_charged")),
        "msg_ids": list(summary.get("msg_ids") or []),
        "error": {"code": error.get("code"), "description": error.get("description")} if error else None,
    }
