"""Send windows across every daylight-saving change of every zone, and zone names that are no place.

On a spring-forward day the clock skips an hour: a window that opens inside it opens when the
clock jumps past its start, and one that lies wholly inside it does not open that day. Whatever
the zone and the day, ``next_opening`` is an open moment and nothing open comes before it.
"""

from __future__ import annotations

import random
import zoneinfo
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache

import pytest

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.send.window import SendWindow

REFUSED = {"localtime", "posixrules", "Factory"}


def window(start: int, length: int, zone: str, days: list[str] | None = None) -> SendWindow:
    end = (start + length) % (24 * 60)
    return SendWindow.parse(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}", days, zone)


def transitions(zone: tzinfo, first: date, last: date) -> list[datetime]:
    """The moments (UTC, to the second) at which ``zone``'s offset changes between two dates."""
    found = []
    day = datetime(first.year, first.month, first.day, 12, tzinfo=UTC)
    while day.date() < last:
        low, high = day, day + timedelta(days=1)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            while high - low > timedelta(seconds=1):
                middle = low + timedelta(seconds=(high - low) // timedelta(seconds=1) // 2)
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high)
        day += timedelta(days=1)
    return found


@cache
def zones_with_changes() -> dict[tuple[object, ...], tuple[str, list[datetime]]]:
    """One zone per distinct set of changes (instant, offset before, offset after) in 2026-2027."""
    distinct: dict[tuple[object, ...], tuple[str, list[datetime]]] = {}
    for name in sorted(zoneinfo.available_timezones() - REFUSED):
        zone = zoneinfo.ZoneInfo(name)
        changes = transitions(zone, date(2026, 1, 1), date(2028, 1, 1))
        if changes:
            key = tuple(
                (c, (c - timedelta(seconds=1)).astimezone(zone).utcoffset(), c.astimezone(zone).utcoffset())
                for c in changes
            )
            distinct.setdefault(key, (name, changes))
    return distinct


def open_on_the_wall_clock(w: SendWindow, moment: datetime) -> bool:
    """The definition, read off the wall clock (exact where no hour repeats)."""
    wall = moment.astimezone(w.zone).replace(tzinfo=None)
    for day in (wall.date() - timedelta(days=1), wall.date()):
        opens = datetime.combine(day, w.start)
        if day.weekday() in w.days and opens <= wall < opens + w.length:
            return True
    return False


@pytest.mark.parametrize("name", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
def test_on_a_spring_forward_day_every_window_opens_when_the_wall_clock_says(name):
    """1,260 windows (start and length every 40 minutes) from the local midnight of the day the
    clock skips forward: the opening is the first moment the wall clock is inside the window."""
    zone = zoneinfo.ZoneInfo(name)
    spring = next(
        c
        for c in transitions(zone, date(2026, 1, 1), date(2027, 1, 1))
        if c.astimezone(zone).utcoffset() > (c - timedelta(seconds=1)).astimezone(zone).utcoffset()
    )
    midnight = datetime.combine(spring.astimezone(zone).date(), datetime.min.time(), zone).astimezone(UTC)
    wrong = []
    for start in range(0, 24 * 60, 40):
        for length in range(40, 24 * 60, 40):
            w = window(start, length, name)
            for now in (midnight, spring - timedelta(minutes=10)):
                expected = now  # every edge lies on a 10-minute grid in UTC here
                while not open_on_the_wall_clock(w, expected):
                    expected += timedelta(minutes=10)
                got = w.next_opening(now)
                if got != expected or not w.is_open(got):
                    wrong.append((w.text, now.isoformat(), got.isoformat(), expected.isoformat()))
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:3]}"


def test_next_opening_is_open_and_nothing_open_is_skipped_across_every_dst_change():
    """Every distinct change of every zone in 2026-2027; windows starting from 2 hours before
    the change's wall time to 2 hours after, short to nearly a day, some on chosen days; moments
    from a day before the change to 90 minutes after."""
    rng = random.Random(21)
    zones = zones_with_changes()
    assert len(zones) > 20  # the zone data is there
    checked = 0
    failures = []
    for name, changes in zones.values():
        for change in changes:
            local = change.astimezone(zoneinfo.ZoneInfo(name))
            wall = local.hour * 60 + local.minute
            for start in range(wall - 120, wall + 121, 30):
                for length in (30, 90, 1410):
                    days = None if rng.random() < 0.7 else rng.sample(["mon", "wed", "sat", "sun"], 2)
                    w = window(start % (24 * 60), length, name, days)
                    for shift in (-26 * 60, -90, -1, 0, 30, 90):
                        now = change + timedelta(minutes=shift)
                        got = w.next_opening(now)
                        checked += 1
                        probes = [now + (got - now) * k / 7 for k in range(7)] + [got - timedelta(seconds=1)]
                        if (
                            not w.is_open(got)
                            or got < now
                            or any(w.is_open(p) for p in probes if now <= p < got)
                        ):
                            failures.append((name, w.text, days, now.isoformat(), got.isoformat()))
    assert not failures, f"{len(failures)} of {checked} wrong, e.g. {failures[:3]}"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("America", "'America' is not a known time zone"),  # a directory: was a raw OSError
        ("Europe/" + "x" * 300, "307 characters long"),  # too long for a file name: a raw OSError
        ("localtime", "'localtime' is a file of the system's time zone database, not a place"),
        ("posixrules", "'posixrules' is a file"),
        ("Factory", "'Factory' is a file"),
        ("right/Asia/Kuwait", "'right/Asia/Kuwait' is a file"),
    ],
)
def test_zone_names_that_are_no_place_are_refused_by_name(name, says):
    with pytest.raises(KwtSMSInputError, match=says):
        SendWindow.parse("09:00-17:00", None, name)
