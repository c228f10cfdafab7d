"""Send windows: the hours (and days) in which a send may go out, in the account's time zone.

Marketing and reminders must not wake people at 3 a.m. A window is written ``"HH:MM-HH:MM"``
(start included, end excluded), optionally with days (``"Sun-Thu"``, ``"fri,sat"``, or a list);
the days are those on which the window *opens*, so ``"22:00-02:00"`` on ``"Thu"`` runs from
Thursday 22:00 to Friday 02:00. Times are wall-clock times in ``timezone`` (Asia/Kuwait by
default, which has no daylight saving); in zones with daylight saving a window follows the wall
clock.

Pure and Airflow-free: the operator asks ``is_open(now)``, ``next_opening(now)`` and
``closes_at(now)`` and defers or stops at a batch boundary accordingly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from airflow_provider_kwtsms.constants import DEFAULT_TIMEZONE
from airflow_provider_kwtsms.errors import KwtSMSInputError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_HOURS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)")
_WHAT_TO_WRITE = 'write it as "HH:MM-HH:MM" in 24-hour time, e.g. "09:00-21:00" or "22:00-06:00"'


@dataclass(frozen=True)
class SendWindow:
    start: time
    length: timedelta  # from the opening to the closing; up to 24 hours less a minute
    days: frozenset[int]  # weekdays (0 = Monday) on which the window opens
    zone: tzinfo
    text: str  # as given, for messages

    # -- reading ----------------------------------------------------------------------------------
    @classmethod
    def parse(
        cls, hours: str, days: str | Iterable[str] | None = None, timezone: str | None = None
    ) -> SendWindow:
        """Read a window; ``KwtSMSInputError`` naming the value and saying what to write."""
        if not isinstance(hours, str):
            raise KwtSMSInputError(f"send_window must be text, got {type(hours).__name__}; {_WHAT_TO_WRITE}")
        match = _HOURS.fullmatch(hours.strip().replace(" ", ""))
        if match is None:
            raise KwtSMSInputError(f"send_window {hours!r} is not a window: {_WHAT_TO_WRITE}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h2 == 24 and m2 != 0:
            raise KwtSMSInputError(f"send_window {hours!r} ends after 24:00: {_WHAT_TO_WRITE}")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        minutes = (end - start) % (24 * 60)
        if minutes == 0 and end == start:
            raise KwtSMSInputError(
                f"send_window {hours!r} is empty (it opens and closes at the same minute): give "
                'a window with some length, e.g. "09:00-21:00", or none at all to send at any time'
            )
        if minutes == 0:  # "00:00-24:00": the whole day
            minutes = 24 * 60
        return cls(
            start=time(h1, m1),
            length=timedelta(minutes=minutes),
            days=_parse_days(days),
            zone=zone(timezone or DEFAULT_TIMEZONE),
            text=hours.strip(),
        )

    @property
    def hours(self) -> str:
        """The hours and days as given, without the zone: ``"09:00-21:00 on mon,sun"``."""
        days = "" if len(self.days) == 7 else " on " + ",".join(DAY_NAMES[d] for d in sorted(self.days))
        return f"{self.text}{days}"

    def __str__(self) -> str:
        return f"{self.hours} ({self.zone})"

    def wall_clock(self, moment: datetime) -> str:
        """``moment`` in the window's zone, then in UTC: ``"2026-12-03 09:00 Asia/Kuwait (06:00 UTC)"``.

        The UTC part carries its date when that differs from the local one, and is left out when
        the zone is at UTC's time then (UTC itself, or London in winter).
        """
        local, utc = _aware(moment).astimezone(self.zone), moment.astimezone(UTC)
        text = f"{local:%Y-%m-%d %H:%M} {self.zone}"
        if not local.utcoffset():
            return text
        in_utc = f"{utc:%H:%M}" if utc.date() == local.date() else f"{utc:%Y-%m-%d %H:%M}"
        return f"{text} ({in_utc} UTC)"

    # -- asking -----------------------------------------------------------------------------------
    def is_open(self, now: datetime) -> bool:
        return self._current(now) is not None

    def closes_at(self, now: datetime) -> datetime | None:
        """When the window open at ``now`` closes (UTC); None when it is closed at ``now``."""
        current = self._current(now)
        return None if current is None else current[1]

    def next_opening(self, now: datetime) -> datetime:
        """``now`` if the window is open, else when it next opens (UTC)."""
        if self.is_open(now):
            return now.astimezone(UTC)
        local_day = _aware(now).astimezone(self.zone).date()
        for offset in range(0, 9):
            opens, _ = self._span(local_day + timedelta(days=offset))
            if opens > _aware(now) and (local_day + timedelta(days=offset)).weekday() in self.days:
                return opens
        raise AssertionError("a window with at least one day opens within 8 days")  # pragma: no cover

    # -- inside -----------------------------------------------------------------------------------
    def _span(self, day: date) -> tuple[datetime, datetime]:
        opens = datetime.combine(day, self.start, tzinfo=self.zone)
        # Wall-clock arithmetic: add the length to the local time, then read it in UTC.
        closes_local = datetime.combine(day, self.start) + self.length
        closes = closes_local.replace(tzinfo=self.zone)
        return opens.astimezone(UTC), closes.astimezone(UTC)

    def _current(self, now: datetime) -> tuple[datetime, datetime] | None:
        at = _aware(now)
        local_day = at.astimezone(self.zone).date()
        for day in (local_day - timedelta(days=1), local_day):  # a window may have opened yesterday
            if day.weekday() not in self.days:
                continue
            opens, closes = self._span(day)
            if opens <= at < closes:
                return opens, closes
        return None


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise KwtSMSInputError(
            f"a time without a time zone ({moment.isoformat()}) cannot be placed in a window"
        )
    return moment


def zone(name: str) -> tzinfo:
    """The time zone called ``name`` (IANA), or ``KwtSMSInputError`` naming it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name.strip():
        raise KwtSMSInputError(
            f"timezone {name!r} is not a time zone: give an IANA name such as 'Asia/Kuwait'"
        )
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise KwtSMSInputError(
            f"timezone {name!r} is not a known time zone: give an IANA name such as 'Asia/Kuwait', "
            "'Asia/Riyadh' or 'UTC'"
        ) from None


def _parse_days(days: str | Iterable[str] | None) -> frozenset[int]:
    if days is None:
        return frozenset(range(7))
    items = days.replace(" ", "").split(",") if isinstance(days, str) else list(days)
    if not any(items):
        raise KwtSMSInputError(f"send_days {days!r} names no day: {_DAYS_HINT}")
    chosen: set[int] = set()
    for item in items:
        if not isinstance(item, str) or not item:
            raise KwtSMSInputError(f"send_days {days!r} holds {item!r}: {_DAYS_HINT}")
        first, _, last = item.partition("-")
        a, b = _day(first, days), _day(last, days) if last else None
        if b is None:
            chosen.add(a)
        else:  # a range, wrapping past Sunday ("Fri-Mon")
            chosen.update((a + k) % 7 for k in range((b - a) % 7 + 1))
    if not chosen:
        raise KwtSMSInputError(f"send_days {days!r} names no day: {_DAYS_HINT}")
    return frozenset(chosen)


_DAYS_HINT = 'write days as "Sun-Thu", "fri,sat" or a list such as ["sun", "mon"]'


_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(name: str, given: object) -> int:
    word = name.strip().lower()
    for index, full in enumerate(_FULL_NAMES):
        if len(word) >= 3 and full.startswith(word):  # "thu", "thurs", "thursday"
            return index
    raise KwtSMSInputError(f"send_days {given!r}: {name!r} is not a day of the week; {_DAYS_HINT}")
