"""Send windows on fixed instants: open, closed, crossing midnight, days, time zones, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.send.window import SendWindow


def kuwait(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026 in Kuwait (UTC+3, no daylight saving); 3 December 2026 is a Thursday."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) - timedelta(hours=3)


def test_a_day_window_is_open_inside_and_closed_outside():
    window = SendWindow.parse("09:00-21:00")
    assert window.is_open(kuwait(3, 9)) and window.is_open(kuwait(3, 20, 59))
    assert not window.is_open(kuwait(3, 21)) and not window.is_open(kuwait(3, 3))
    assert window.next_opening(kuwait(3, 3)) == kuwait(3, 9)
    assert window.next_opening(kuwait(3, 22)) == kuwait(4, 9)
    assert window.closes_at(kuwait(3, 10)) == kuwait(3, 21)
    assert window.closes_at(kuwait(3, 22)) is None


def test_a_window_crossing_midnight_belongs_to_the_day_it_opens():
    window = SendWindow.parse("22:00-02:00", days="Thu")
    assert window.is_open(kuwait(3, 23)) and window.is_open(kuwait(4, 1, 59))  # Thu 23:00, Fri 01:59
    assert not window.is_open(kuwait(4, 2)) and not window.is_open(kuwait(4, 23))  # Fri 23:00: not Thu
    assert window.closes_at(kuwait(4, 1)) == kuwait(4, 2)
    assert window.next_opening(kuwait(4, 3)) == kuwait(10, 22)  # next Thursday


def test_days_ranges_wrap_and_names_may_be_long_or_short():
    assert SendWindow.parse("08:00-17:00", days="Sun-Thu").days == {6, 0, 1, 2, 3}
    assert SendWindow.parse("08:00-17:00", days="fri-mon").days == {4, 5, 6, 0}
    assert SendWindow.parse("08:00-17:00", days=["Saturday", "tues"]).days == {5, 1}
    window = SendWindow.parse("08:00-17:00", days="Sun-Thu")
    assert window.next_opening(kuwait(4, 12)) == kuwait(6, 8)  # Friday noon -> Sunday 08:00


def test_the_time_zone_is_the_accounts_and_follows_the_wall_clock():
    riyadh = SendWindow.parse("09:00-10:00", timezone="Asia/Riyadh")  # also UTC+3
    assert riyadh.is_open(kuwait(3, 9, 30))
    london = SendWindow.parse("09:00-10:00", timezone="Europe/London")
    assert london.is_open(datetime(2026, 7, 1, 8, 30, tzinfo=UTC))  # BST: 09:30 local
    assert london.is_open(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))  # GMT: 09:30 local


def test_the_whole_day_is_a_window_that_never_closes_within_the_day():
    window = SendWindow.parse("00:00-24:00")
    assert window.is_open(kuwait(3, 0)) and window.is_open(kuwait(3, 23, 59))


def test_a_moment_reads_in_the_windows_zone_first_then_in_utc():
    window = SendWindow.parse("09:00-21:00", days="Sun-Thu")
    assert window.hours == "09:00-21:00 on mon,tue,wed,thu,sun"
    assert str(window) == "09:00-21:00 on mon,tue,wed,thu,sun (Asia/Kuwait)"
    assert window.wall_clock(kuwait(3, 9)) == "2026-12-03 09:00 Asia/Kuwait (06:00 UTC)"
    assert window.wall_clock(kuwait(4, 2)) == "2026-12-04 02:00 Asia/Kuwait (2026-12-03 23:00 UTC)"
    utc = SendWindow.parse("09:00-21:00", timezone="UTC")
    assert utc.wall_clock(datetime(2026, 12, 3, 9, tzinfo=UTC)) == "2026-12-03 09:00 UTC"


@pytest.mark.parametrize(
    ("hours", "days", "zone", "says"),
    [
        ("9-17", None, None, "'9-17' is not a window"),
        ("09:00-09:00", None, None, "is empty"),
        ("25:00-26:00", None, None, "is not a window"),
        ("09:00–17:00", None, None, "is not a window"),  # an en dash
        ("09:00-17:00", "Funday", None, "'Funday' is not a day"),
        ("09:00-17:00", "", None, "names no day"),
        ("09:00-17:00", None, "Mars/Olympus", "'Mars/Olympus' is not a known time zone"),
        ("09:00-17:00", None, "../../etc/passwd", "is not a known time zone"),
        (930, None, None, "must be text"),
    ],
)
def test_bad_windows_name_the_value_and_say_what_to_write(hours, days, zone, says):
    with pytest.raises(KwtSMSInputError, match=says):
        SendWindow.parse(hours, days, zone)


def test_a_naive_time_is_refused():
    with pytest.raises(KwtSMSInputError, match="without a time zone"):
        SendWindow.parse("09:00-17:00").is_open(datetime(2026, 12, 3, 10))


@given(
    start=st.integers(0, 24 * 60 - 1),
    length=st.integers(1, 24 * 60 - 1),
    days=st.sets(st.integers(0, 6), min_size=1),
    minutes=st.integers(0, 14 * 24 * 60),
)
def test_next_opening_is_open_and_nothing_before_it_is(start, length, days, minutes):
    end = (start + length) % (24 * 60)
    hours = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    names = [("mon", "tue", "wed", "thu", "fri", "sat", "sun")[d] for d in days]
    window = SendWindow.parse(hours, names)
    now = kuwait(1, 0) + timedelta(minutes=minutes)
    opening = window.next_opening(now)
    assert window.is_open(opening) and opening >= now
    step = now
    while step < opening:  # every minute before the opening is closed
        assert not window.is_open(step)
        step += timedelta(minutes=max(1, (opening - now) // timedelta(minutes=1) // 50))
