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
        """``now`` if the window is open, else when it next opens (UTC): always an open moment.

        A day whose window the clock skips whole (a spring-forward hour, a day a zone dropped)
        has no opening; the next day that has one is taken.
        """
        if self.is_open(now):
            return now.astimezone(UTC)
        at = _aware(now)
        local_day = at.astimezone(self.zone).date()
        openings = []
        for offset in range(-1, 9):  # yesterday's window too: a zone may step a day back or forward
            day = local_day + timedelta(days=offset)
            if day.weekday() in self.days:
                opens, closes = self._span(day)
                if at < opens < closes:
                    openings.append(opens)
        if not openings:  # pragma: no cover - a window with one day opens within 8 days
            raise AssertionError("a window with at least one day opens within 8 days")
        return min(openings)

    # -- inside -----------------------------------------------------------------------------------
    def _span(self, day: date) -> tuple[datetime, datetime]:
        """The window opening on ``day``, in UTC: from the first moment the wall clock reads its
        start to the first it reads its end (wall-clock arithmetic, so 8 wall hours across a
        DST change). Empty (opens == closes) when the clock skips the whole of it."""
        opens_local = datetime.combine(day, self.start)
        return _first_reading(opens_local, self.zone), _first_reading(opens_local + self.length, self.zone)

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


def _first_reading(wall: datetime, zone: tzinfo) -> datetime:
    """The first moment (UTC) at which the clock in ``zone`` reads ``wall`` or later.

    A wall time that exists reads first at its earlier occurrence (fold 0). One that the clock
    skips (a spring-forward gap) is first passed at the change itself, which lies between its two
    readings; found by halving, to the second (a gap is at most a day: 17 steps).
    """
    before = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if before.astimezone(zone).replace(tzinfo=None) == wall:
        return before
    after = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the change: earlier in UTC
    low, high = min(before, after), max(before, after)  # reads earlier than wall / later than wall
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle -= timedelta(microseconds=middle.microsecond)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise KwtSMSInputError(
            f"a time without a time zone ({moment.isoformat()}) cannot be placed in a window"
        )
    return moment


# Not places: the worker's own zone ("localtime"), the rules file zic uses for POSIX strings
# ("posixrules"), the placeholder of an unset clock ("Factory"); and the system's "posix/" and
# "right/" copies of the tree ("right/" counts leap seconds, so its clocks are 27 s off).
_NOT_ZONES = frozenset({"localtime", "posixrules", "factory"})
_NOT_ZONE_TREES = frozenset({"posix", "right"})
ZONE_NAME_LIMIT = 64  # the longest IANA name, "America/Argentina/ComodRivadavia", has 32
_ZONE_HINT = "give an IANA name such as 'Asia/Kuwait', 'Asia/Riyadh' or 'UTC'"


def zone(name: str) -> tzinfo:
    """The time zone called ``name`` (IANA), or ``KwtSMSInputError`` naming it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name.strip():
        raise KwtSMSInputError(f"timezone {name!r} is not a time zone: {_ZONE_HINT}")
    key = name.strip()
    if len(key) > ZONE_NAME_LIMIT:
        raise KwtSMSInputError(
            f"timezone {key[:40]!r}... is {len(key)} characters long, more than any time zone's "
            f"name (at most {ZONE_NAME_LIMIT}): {_ZONE_HINT}"
        )
    if key.lower() in _NOT_ZONES or key.split("/", 1)[0].lower() in _NOT_ZONE_TREES:
        raise KwtSMSInputError(
            f"timezone {name!r} is a file of the system's time zone database, not a place "
            f"('localtime' would be the worker's own zone, not the account's): {_ZONE_HINT}"
        )
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory ("America"), ...
        raise KwtSMSInputError(f"timezone {name!r} is not a known time zone: {_ZONE_HINT}") from None


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
