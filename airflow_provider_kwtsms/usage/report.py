"""The usage report: credits per DAG per day, totals, problems, alerts and balances for a period.

Pure aggregation over ``records.Row`` values (no database, no Airflow): the plugin's endpoint
reads the rows and hands them here, and the tests feed rows straight in. The period is whole
days in one time zone, its first and last day included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.usage.records import (
    Alert,
    Reading,
    Row,
    Send,
    as_alert,
    as_reading,
    as_send,
)

DEFAULT_DAYS = 30
MAX_DAYS = 366  # a year and a day: longer periods belong in a warehouse, not a page
RECENT = 25  # problems and alerts listed, newest first
MAX_TREND_POINTS = 400  # balance points per connection (evenly thinned beyond, the last kept)


@dataclass(frozen=True)
class Period:
    """Whole days ``first`` to ``last`` (both included) in ``zone``."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        """The first instant of the period, in UTC."""
        return datetime.combine(self.first, time(), self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period, in UTC."""
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def day_of(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()


def parse_period(
    start: str | None, end: str | None, days: str | int | None, timezone: str | None, today: date
) -> Period:
    """The period a request asks for: ``start``/``end`` (YYYY-MM-DD, both included), or the last
    ``days`` days up to ``today`` (default 30), in ``timezone`` (IANA name, default UTC).
    A bad value raises ``KwtSMSInputError`` naming the parameter, its value and what to write."""
    zone_name = (timezone or "UTC").strip()
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise KwtSMSInputError(
            f"timezone is {_shown(zone_name)}: write an IANA zone name, e.g. UTC or Asia/Kuwait."
        ) from None
    last = _date("end", end) if end else today
    if start:
        first = _date("start", start)
    else:
        length = DEFAULT_DAYS if days in (None, "") else _days(days)
        first = last - timedelta(days=length - 1)
    if first > last:
        raise KwtSMSInputError(f"start {first} is after end {last}: give start on or before end.")
    if (last - first).days + 1 > MAX_DAYS:
        raise KwtSMSInputError(
            f"the period {first} to {last} is {(last - first).days + 1} days, above the limit of "
            f"{MAX_DAYS}: ask for a shorter period (or several)."
        )
    return Period(first, last, zone)


def _shown(value: str) -> str:
    return repr(value[:60])


def _date(name: str, value: str) -> date:
    cleaned = value.strip()
    try:
        if len(cleaned) == 10:  # fromisoformat alone takes 20260131 and week dates too
            return date.fromisoformat(cleaned)
    except ValueError:
        pass
    raise KwtSMSInputError(f"{name} is {_shown(value)}: write a day as YYYY-MM-DD, e.g. 2026-01-31.")


def _days(value: str | int) -> int:
    try:
        length = int(str(value).strip())
    except ValueError:
        length = 0
    if not 1 <= length <= MAX_DAYS:
        raise KwtSMSInputError(
            f"days is {_shown(str(value))}: write a whole number of days from 1 to {MAX_DAYS}."
        )
    return length


def build_report(
    rows: Iterable[Row],
    period: Period,
    *,
    page_readings: Iterable[Reading] = (),
    recent: int = RECENT,
) -> dict[str, Any]:
    """The report for ``period`` from the XCom ``rows`` (others' rows are ignored) and the
    balance readings the page made itself: a JSON-ready dict, the page's and the endpoint's."""
    start, end = period.start, period.end
    sends: list[Send] = []
    readings: list[Reading] = [r for r in page_readings if start <= r.at < end]
    alerts: list[Alert] = []
    for row in rows:
        if not start <= row.at < end:
            continue
        send = as_send(row)
        if send is not None:
            sends.append(send)
            if send.balance_after is not None:
                readings.append(Reading(send.connection, row.at, send.balance_after, "send"))
            continue
        reading = as_reading(row)
        if reading is not None:
            readings.append(reading)
            continue
        alert = as_alert(row)
        if alert is not None:
            alerts.append(alert)
    return {
        "period": {
            "start": period.first.isoformat(),
            "end": period.last.isoformat(),
            "timezone": period.zone.key,
        },
        **_credits(sends, period),
        "problems": _problems(sends, recent),
        "alerts": _alerts(alerts, recent),
        "balances": _balances(readings),
    }


def _credits(sends: list[Send], period: Period) -> dict[str, Any]:
    per_day: dict[date, dict[str, int]] = {day: {} for day in period.days()}
    per_dag: dict[str, int] = {}
    for send in sends:
        dag = send.row.dag_id
        day = per_day.setdefault(period.day_of(send.row.at), {})
        day[dag] = day.get(dag, 0) + send.credits
        per_dag[dag] = per_dag.get(dag, 0) + send.credits
    return {
        "totals": {
            "credits": sum(per_dag.values()),
            "sends": len(sends),
            "test_sends": sum(1 for s in sends if s.test),
            "numbers_sent": sum(s.numbers_sent for s in sends),
            "failed": sum(s.failed for s in sends),
            "uncertain": sum(s.uncertain for s in sends),
            "suppressed": sum(s.suppressed for s in sends),
        },
        "dags": [
            {"dag_id": dag, "credits": credits}
            for dag, credits in sorted(per_dag.items(), key=lambda item: (-item[1], item[0]))
        ],
        "daily": [
            {"day": day.isoformat(), "total": sum(by_dag.values()), "credits": dict(sorted(by_dag.items()))}
            for day, by_dag in sorted(per_day.items())
        ],
    }


def _where(row: Row) -> dict[str, Any]:
    return {
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "task_id": row.task_id,
        "map_index": row.map_index,
        "at": row.at.astimezone(UTC).isoformat(),
    }


def _problems(sends: list[Send], recent: int) -> list[dict[str, Any]]:
    troubled = [s for s in sends if s.failed or s.uncertain or s.suppressed or s.not_attempted or not s.ok]
    troubled.sort(key=lambda s: s.row.at, reverse=True)
    return [
        {
            **_where(s.row),
            "failed": s.failed,
            "uncertain": s.uncertain,
            "suppressed": s.suppressed,
            "not_attempted": s.not_attempted,
            "credits": s.credits,
            "reasons": list(s.reasons),
        }
        for s in troubled[:recent]
    ]


def _alerts(alerts: list[Alert], recent: int) -> dict[str, Any]:
    per_target: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        for target in alert.targets or ("(none valid)",):
            entry = per_target.setdefault(target, {"target": target, "alerts": 0, "failed": 0, "last_at": ""})
            entry["alerts"] += 1
            entry["failed"] += 0 if alert.ok else 1
            entry["last_at"] = max(entry["last_at"], alert.row.at.astimezone(UTC).isoformat())
    alerts.sort(key=lambda a: a.row.at, reverse=True)
    return {
        "total": len(alerts),
        "credits": sum(a.credits for a in alerts),
        "targets": sorted(per_target.values(), key=lambda e: (-e["alerts"], e["target"])),
        "recent": [
            {
                **_where(a.row),
                "targets": list(a.targets),
                "ok": a.ok,
                "credits": a.credits,
                "reason": a.reason,
            }
            for a in alerts[:recent]
        ],
    }


def _balances(readings: list[Reading]) -> list[dict[str, Any]]:
    per_connection: dict[str, list[Reading]] = {}
    for reading in readings:
        per_connection.setdefault(reading.connection, []).append(reading)
    out = []
    for connection, points in sorted(per_connection.items()):
        points.sort(key=lambda r: r.at)
        latest = points[-1]
        out.append(
            {
                "connection": connection,
                "now": _point(latest),
                "trend": [_point(r) for r in _thinned(points)],
            }
        )
    return out


def _point(reading: Reading) -> dict[str, Any]:
    return {
        "at": reading.at.astimezone(UTC).isoformat(),
        "available": reading.available,
        "source": reading.source,
    }


def _thinned(points: list[Reading]) -> list[Reading]:
    if len(points) <= MAX_TREND_POINTS:
        return points
    step = len(points) / (MAX_TREND_POINTS - 1)
    picked = [points[int(i * step)] for i in range(MAX_TREND_POINTS - 1)]
    return [*picked, points[-1]]
