"""The texts the storm guard sends of its own: the digest of a quiet period, and the recovery.

    kwtsms_campaign: 12 more failures since 14:05 (send_batch x7, load_rows x5)
    kwtsms_campaign recovered at 14:31 after 13 failures since 14:05

Times are wall-clock hours and minutes in the notifier's time zone (the account's, Asia/Kuwait,
unless ``data["timezone"]`` says otherwise). The notifier cuts each text to its page limit, the
label list first: the counts come before it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from airflow_provider_kwtsms.alerts.guard import Report

SHOWN_LABELS = 6  # a digest names the most frequent few; the rest is "..."


def clock_time(at: float, zone: str) -> str:
    """``at`` (epoch seconds) as HH:MM in ``zone``."""
    return datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(zone)).strftime("%H:%M")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _labels(report: Report) -> str:
    shown = [f"{label} x{count}" for label, count in report.labels[:SHOWN_LABELS]]
    if len(report.labels) > SHOWN_LABELS:
        shown.append("...")
    return f" ({', '.join(shown)})" if shown else ""


def _held(report: Report) -> str:
    return f"; {report.held} held back by the daily cap" if report.held else ""


def digest_text(name: str, report: Report, zone: str) -> str:
    """One line for the alerts counted in a quiet period."""
    kind = "failure" if not report.others else "alert"
    since = f" since {clock_time(report.since, zone)}" if report.since is not None else ""
    return f"{name}: {_plural(report.count, f'more {kind}')}{since}{_labels(report)}{_held(report)}"


def recovery_text(name: str, incident: tuple[float, int], report: Report, now: float, zone: str) -> str:
    """One line for a DAG that succeeds again after failing: how many failures, since when."""
    since, failures = incident
    text = (
        f"{name} recovered at {clock_time(now, zone)} after {_plural(failures, 'failure')} "
        f"since {clock_time(since, zone)}"
    )
    if report.others:
        text += f" and {_plural(report.others, 'other alert')}"
    return text + _held(report)
