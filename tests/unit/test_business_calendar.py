"""BusinessCalendar: working days and business time, checked against dates worked by hand.

Calendar facts used below (from `holidays.China(years=2026)`, asserted in the first test):
  New Year     off Thu 01-01, Fri 01-02 (for Sun 01-04, worked), Sat 01-03 weekend
  Spring Fest. off Mon 02-16 .. Fri 02-20, Mon 02-23; worked Sat 02-14 (for Fri 02-20)
               and Sat 02-28 (for Mon 02-23); Sun 02-15, Sat/Sun 02-21/22 are weekend
  Mid-Autumn   off Fri 09-25
  National Day off Thu 10-01 .. Wed 10-07 (10-04 is a Sunday); worked Sun 09-20
               (for Tue 10-06) and Sat 10-10 (for Wed 10-07)
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.business_calendar import BusinessCalendar
from shared.events.contracts import ServiceHours

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
D = dt.date
H = dt.timedelta(hours=1)

OFFICE = BusinessCalendar.office_hours()
NO_ADJUSTED = BusinessCalendar(adjusted_workdays=False)
ALWAYS = BusinessCalendar.always_open()
LUNCH = BusinessCalendar({d: [("09:00", "12:00"), ("13:00", "18:00")] for d in range(1, 6)})
SHORT_FRIDAY = BusinessCalendar({**{d: [("09:00", "18:00")] for d in range(1, 5)},
                                 5: [("09:00", "12:00")]})
CLOSED_0303 = BusinessCalendar.office_hours(closures=[D(2026, 3, 3)])
BERLIN_OFFICE = BusinessCalendar.office_hours(timezone="Europe/Berlin", country="DE")
BERLIN_ALWAYS = BusinessCalendar.always_open(timezone="Europe/Berlin")


def sh(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def berlin(*args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN, fold=fold)


# --------------------------------------------------------------------------- package facts

def test_holidays_package_knows_the_2026_arrangements():
    cn = holidays.China(years=2026)
    national_day = {D(2026, 10, d) for d in (1, 2, 3, 5, 6, 7)}       # 10-04 is a Sunday
    spring_festival = {D(2026, 2, d) for d in (16, 17, 18, 19, 20, 23)}
    assert national_day <= set(cn) and spring_festival <= set(cn)
    assert D(2026, 10, 8) not in cn and D(2026, 2, 24) not in cn
    assert {D(2026, 9, 20), D(2026, 10, 10), D(2026, 2, 14), D(2026, 2, 28)} <= cn.weekend_workdays


# --------------------------------------------------------------------------- working days

@pytest.mark.parametrize("calendar, day, expected", [
    (OFFICE, D(2026, 9, 19), False),   # plain Saturday
    (OFFICE, D(2026, 9, 20), True),    # Sunday worked for Tue 10-06
    (OFFICE, D(2026, 9, 25), False),   # Mid-Autumn Festival, a Friday
    (OFFICE, D(2026, 9, 30), True),    # Wednesday before National Day
    *[(OFFICE, D(2026, 10, d), False) for d in range(1, 8)],  # National Day week
    (OFFICE, D(2026, 10, 8), True),    # Thursday after
    (OFFICE, D(2026, 10, 10), True),   # Saturday worked for Wed 10-07
    (OFFICE, D(2026, 10, 11), False),  # plain Sunday
    (OFFICE, D(2026, 2, 14), True),    # Saturday worked for Fri 02-20
    (OFFICE, D(2026, 2, 15), False),   # Sunday
    *[(OFFICE, D(2026, 2, d), False) for d in range(16, 24)],  # 16-20 off, 21-22 weekend, 23 off
    (OFFICE, D(2026, 2, 24), True),
    (OFFICE, D(2026, 2, 28), True),    # Saturday worked for Mon 02-23
    (OFFICE, D(2026, 1, 1), False), (OFFICE, D(2026, 1, 2), False), (OFFICE, D(2026, 1, 3), False),
    (OFFICE, D(2026, 1, 4), True),     # Sunday worked for Fri 01-02
    (NO_ADJUSTED, D(2026, 9, 20), False),  # adjusted weekends not worked ...
    (NO_ADJUSTED, D(2026, 10, 10), False),
    (NO_ADJUSTED, D(2026, 10, 6), False),  # ... but the day off stays off
    (ALWAYS, D(2026, 10, 1), True),    # no holidays: a Thursday is a working day
    (ALWAYS, D(2026, 10, 3), False),   # working days are still Monday to Friday
    (CLOSED_0303, D(2026, 3, 3), False),  # contract closure on a Tuesday
    (CLOSED_0303, D(2026, 3, 4), True),
])
def test_is_working_day(calendar, day, expected):
    assert calendar.is_working_day(day) is expected


@pytest.mark.parametrize("calendar, start, n, expected", [
    (OFFICE, D(2026, 9, 30), 0, D(2026, 9, 30)),   # a working day is its own 0th
    (OFFICE, D(2026, 9, 30), 1, D(2026, 10, 8)),   # 10-01..10-07 off
    (OFFICE, D(2026, 9, 30), 2, D(2026, 10, 9)),
    (OFFICE, D(2026, 9, 30), 3, D(2026, 10, 10)),  # the working Saturday
    (OFFICE, D(2026, 9, 30), 4, D(2026, 10, 12)),  # Sunday 10-11 skipped
    (OFFICE, D(2026, 10, 1), 0, D(2026, 10, 8)),   # holiday: next working day
    (OFFICE, D(2026, 10, 1), 1, D(2026, 10, 8)),   # counting starts the day after
    (OFFICE, D(2026, 9, 18), 1, D(2026, 9, 20)),   # Fri -> working Sunday (Sat 09-19 off)
    (OFFICE, D(2026, 9, 24), 1, D(2026, 9, 28)),   # Fri 09-25 Mid-Autumn, 26/27 weekend
    # payment due 15 working days after Tue 09-15: 16,17,18,20,21,22,23,24 (8), [25 off]
    # 28,29,30 (11), 10-08,09,10 (14), 10-12 (15)
    (OFFICE, D(2026, 9, 15), 15, D(2026, 10, 12)),
    # change request received Tue 09-29, assessed within 5: 30, 10-08, 09, 10, 12
    (OFFICE, D(2026, 9, 29), 5, D(2026, 10, 12)),
    (OFFICE, D(2026, 2, 13), 1, D(2026, 2, 14)),   # working Saturday
    (OFFICE, D(2026, 2, 13), 2, D(2026, 2, 24)),   # 15..23 all off
    (OFFICE, D(2026, 2, 12), 5, D(2026, 2, 26)),   # 13, 14, 24, 25, 26
    (NO_ADJUSTED, D(2026, 9, 30), 3, D(2026, 10, 12)),  # 10-08, 10-09, (10-10 not), 10-12
    (CLOSED_0303, D(2026, 3, 2), 1, D(2026, 3, 4)),
])
def test_add_working_days(calendar, start, n, expected):
    assert calendar.add_working_days(start, n) == expected


def test_add_working_days_refuses_negative():
    with pytest.raises(ValueError):
        OFFICE.add_working_days(D(2026, 3, 2), -1)


@pytest.mark.parametrize("start, end, expected", [
    (D(2026, 9, 30), D(2026, 10, 12), 4),   # 10-08, 10-09, 10-10, 10-12
    (D(2026, 10, 1), D(2026, 10, 7), 0),    # the whole holiday
    (D(2026, 3, 2), D(2026, 3, 2), 0),
    # Feb 2026 after the 1st: 2-6 (5), 9-13 (5), Sat 14 (1), 24-27 (4), Sat 28 (1) = 16
    (D(2026, 2, 1), D(2026, 2, 28), 16),
    (D(2026, 2, 28), D(2026, 2, 1), -16),
    # Sep 2026 after the 1st: 2-4 (3), 7-11 (5), 14-18 (5), Sun 20 (1), 21-24 (4), 28-30 (3) = 21
    (D(2026, 9, 1), D(2026, 9, 30), 21),
])
def test_working_days_between(start, end, expected):
    assert OFFICE.working_days_between(start, end) == expected


@pytest.mark.parametrize("year, month, n, expected", [
    (2026, 1, 1, D(2026, 1, 4)),     # 01-01, 01-02 off, 01-03 Saturday, 01-04 worked Sunday
    (2026, 10, 1, D(2026, 10, 8)),
    (2026, 10, 3, D(2026, 10, 10)),  # 08, 09, Sat 10
    (2026, 2, 11, D(2026, 2, 14)),   # 2-6 (5), 9-13 (10), Sat 14 (11)
    (2026, 2, 12, D(2026, 2, 24)),
    (2026, 2, 16, D(2026, 2, 28)),   # the last one, see working_days_between above
])
def test_nth_working_day_of_month(year, month, n, expected):
    assert OFFICE.nth_working_day_of_month(year, month, n) == expected


@pytest.mark.parametrize("n", [0, 17])
def test_nth_working_day_of_month_out_of_range(n):
    with pytest.raises(ValueError):
        OFFICE.nth_working_day_of_month(2026, 2, n)  # February 2026 has 16


# --------------------------------------------------------------------------- business time

@pytest.mark.parametrize("calendar, start, hours, expected", [
    # P2 opened Wed 09-30 17:00, 4 h: 17-18 (1 h), 10-01..07 off, Thu 10-08 09:00 + 3 h
    (OFFICE, sh(2026, 9, 30, 17), 4, sh(2026, 10, 8, 12)),
    # Fri 10-09 15:00, 8 h: 15-18 (3 h), working Sat 10-10 09:00 + 5 h
    (OFFICE, sh(2026, 10, 9, 15), 8, sh(2026, 10, 10, 14)),
    # 14 h: 3 h Fri + 9 h Sat = 12 h, Sun 10-11 off, Mon 10-12 09:00 + 2 h
    (OFFICE, sh(2026, 10, 9, 15), 14, sh(2026, 10, 12, 11)),
    # same ticket when adjusted weekends are not worked: 3 h Fri, Mon 10-12 09:00 + 5 h
    (NO_ADJUSTED, sh(2026, 10, 9, 15), 8, sh(2026, 10, 12, 14)),
    # Fri 02-13 16:00, 12 h: 2 h Fri + 9 h Sat 02-14 = 11 h, 02-15..23 off, Tue 02-24 09:00 + 1 h
    (OFFICE, sh(2026, 2, 13, 16), 12, sh(2026, 2, 24, 10)),
    # opened on a holiday (Spring Festival): clock starts Tue 02-24 09:00
    (OFFICE, sh(2026, 2, 17, 10), 2, sh(2026, 2, 24, 11)),
    # outside hours: before opening, after closing, on a Saturday
    (OFFICE, sh(2026, 3, 2, 7), 1, sh(2026, 3, 2, 10)),
    (OFFICE, sh(2026, 3, 2, 20), 1, sh(2026, 3, 3, 10)),
    (OFFICE, sh(2026, 3, 7, 10), 1, sh(2026, 3, 9, 10)),
    # using up the day exactly ends at closing time, not at the next opening
    (OFFICE, sh(2026, 3, 2, 17), 1, sh(2026, 3, 2, 18)),
    # zero duration: the start itself, even outside hours
    (OFFICE, sh(2026, 3, 2, 20), 0, sh(2026, 3, 2, 20)),
    (OFFICE, sh(2026, 3, 2, 10), 0, sh(2026, 3, 2, 10)),
    # closure Tue 03-03: Mon 17-18 (1 h), Wed 03-04 09:00 + 1 h
    (CLOSED_0303, sh(2026, 3, 2, 17), 2, sh(2026, 3, 4, 10)),
    # lunch break 12-13: 11-12 (1 h) then 13:00 + 1 h
    (LUNCH, sh(2026, 3, 2, 11), 2, sh(2026, 3, 2, 14)),
    (LUNCH, sh(2026, 3, 2, 11), 1, sh(2026, 3, 2, 12)),
    (LUNCH, sh(2026, 3, 2, 12, 30), 0.5, sh(2026, 3, 2, 13, 30)),  # opened during lunch
    (LUNCH, sh(2026, 3, 2, 17), 2, sh(2026, 3, 3, 10)),
    # 09-30 16:00, 6 h: 2 h, then 10-08 09-12 (3 h), 13:00 + 1 h
    (LUNCH, sh(2026, 9, 30, 16), 6, sh(2026, 10, 8, 14)),
    # 24x7 without holidays: plain addition, National Day or not
    (ALWAYS, sh(2026, 10, 1), 72, sh(2026, 10, 4)),
    (ALWAYS, sh(2026, 2, 16, 23, 30), 1, sh(2026, 2, 17, 0, 30)),
])
def test_add_business_time(calendar, start, hours, expected):
    deadline = calendar.add_business_time(start, dt.timedelta(hours=hours))
    assert deadline == expected
    assert deadline.tzinfo is UTC


@pytest.mark.parametrize("start, hours, expected", [
    # Sun 01-04 works for Fri 01-02, so it has Friday's 09-12: 3 h, then Mon 01-05 09:00 + 1 h
    (sh(2026, 1, 4, 8), 4, sh(2026, 1, 5, 10)),
    # Sat 02-14 works for Fri 02-20: 3 h, then 02-24 09:00 + 1 h
    (sh(2026, 2, 14, 9), 4, sh(2026, 2, 24, 10)),
    # Sat 02-28 works for Mon 02-23, so it has Monday's 09-18
    (sh(2026, 2, 28, 9), 4, sh(2026, 2, 28, 13)),
])
def test_adjusted_weekend_keeps_the_hours_of_the_weekday_it_replaces(start, hours, expected):
    assert SHORT_FRIDAY.add_business_time(start, dt.timedelta(hours=hours)) == expected


@pytest.mark.parametrize("calendar, start, end, expected", [
    (OFFICE, sh(2026, 9, 30, 17), sh(2026, 10, 8, 12), 4 * H),
    (OFFICE, sh(2026, 10, 8, 12), sh(2026, 9, 30, 17), -4 * H),   # reversed: negative
    (OFFICE, sh(2026, 10, 1), sh(2026, 10, 8), 0 * H),            # holiday week
    # Mon 03-02 .. Mon 03-09 00:00: five days of 9 h
    (OFFICE, sh(2026, 3, 2), sh(2026, 3, 9), 45 * H),
    (LUNCH, sh(2026, 3, 2, 8), sh(2026, 3, 2, 20), 8 * H),
    (SHORT_FRIDAY, sh(2026, 1, 4), sh(2026, 1, 5), 3 * H),
    # 24x7: elapsed time, Spring Festival included (02-15 .. 02-24 = 9 days)
    (ALWAYS, sh(2026, 2, 15), sh(2026, 2, 24), 216 * H),
])
def test_business_time_between(calendar, start, end, expected):
    assert calendar.business_time_between(start, end) == expected


def test_instants_in_other_zones_are_the_same_instants():
    start = dt.datetime(2026, 9, 30, 9, tzinfo=UTC)  # 17:00 in Shanghai
    assert OFFICE.add_business_time(start, 4 * H) == dt.datetime(2026, 10, 8, 4, tzinfo=UTC)


def test_is_open_and_next_opening():
    assert OFFICE.is_open(sh(2026, 9, 30, 17, 59))
    assert not OFFICE.is_open(sh(2026, 9, 30, 18))  # intervals are half-open
    assert not OFFICE.is_open(sh(2026, 10, 6, 10))  # substituted day off
    assert OFFICE.next_opening(sh(2026, 9, 30, 18)) == sh(2026, 10, 8, 9)
    assert OFFICE.next_opening(sh(2026, 9, 30, 10)) == sh(2026, 9, 30, 10)
    assert OFFICE.next_opening(sh(2026, 9, 19, 12)) == sh(2026, 9, 20, 9)  # working Sunday


# --------------------------------------------------------------------------- DST (zoneinfo)

def test_round_the_clock_across_dst_is_plain_addition():
    # Berlin springs forward on Sun 2026-03-29 (02:00 CET -> 03:00 CEST)
    start = berlin(2026, 3, 28, 12)                      # 11:00 UTC
    assert BERLIN_ALWAYS.add_business_time(start, 24 * H) == berlin(2026, 3, 29, 13)  # 11:00 UTC
    assert BERLIN_ALWAYS.business_time_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H
    # and falls back on Sun 2026-10-25 (03:00 CEST -> 02:00 CET)
    assert BERLIN_ALWAYS.business_time_between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * H


def test_office_hours_across_dst_keep_wall_clock_opening():
    # Fri 03-27 17:00 CET (16:00 UTC): 1 h Friday, Mon 03-30 09:00 CEST + 1 h = 08:00 UTC
    deadline = BERLIN_OFFICE.add_business_time(berlin(2026, 3, 27, 17), 2 * H)
    assert deadline == dt.datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_hours_spanning_the_dst_change_count_real_time():
    night = BusinessCalendar({7: [("01:00", "04:00")]}, "Europe/Berlin", None)
    # 03-29: 01:00 CET = 00:00 UTC, 04:00 CEST = 02:00 UTC -> 2 h
    assert night.business_time_between(berlin(2026, 3, 29), berlin(2026, 3, 29, 12)) == 2 * H
    # 10-25: 01:00 CEST = 23:00 UTC (24th), 04:00 CET = 03:00 UTC -> 4 h
    assert night.business_time_between(berlin(2026, 10, 25), berlin(2026, 10, 25, 12)) == 4 * H


# --------------------------------------------------------------------------- construction

def test_from_service_hours_matches_the_factories():
    office = ServiceHours(hours={d: [("09:00", "18:00")] for d in range(1, 6)},
                          closures=[D(2026, 3, 3)])
    assert BusinessCalendar.from_service_hours(office) == CLOSED_0303
    as_json = {"timezone": "Asia/Shanghai", "country": "CN", "closures": [D(2026, 3, 3)],
               "hours": {str(d): [["09:00", "18:00"]] for d in range(1, 6)}}
    assert BusinessCalendar.from_service_hours(as_json) == CLOSED_0303


def test_from_service_hours_round_the_clock_ignores_holidays():
    twenty_four_seven = ServiceHours(hours={d: [("00:00", "24:00")] for d in range(1, 8)})
    calendar = BusinessCalendar.from_service_hours(twenty_four_seven)
    assert calendar == ALWAYS
    assert calendar.add_business_time(sh(2026, 10, 1, 8), 5 * H) == sh(2026, 10, 1, 13)


def test_from_service_hours_empty_country_means_no_holidays():
    calendar = BusinessCalendar.from_service_hours(
        ServiceHours(hours={d: [("09:00", "18:00")] for d in range(1, 6)}, country=""))
    assert calendar.is_working_day(D(2026, 10, 1))
    assert not calendar.is_working_day(D(2026, 10, 10))  # no adjusted weekends either


@pytest.mark.parametrize("hours", [
    {1: [("09:00", "25:00")]},
    {1: [("09:00", "24:30")]},
    {1: [("18:00", "09:00")]},                      # reversed
    {1: [("09:00", "09:00")]},                      # empty
    {1: [("09:00", "13:00"), ("12:00", "18:00")]},  # overlapping
    {1: [("24:00", "24:00")]},
    {8: [("09:00", "18:00")]},                      # no ISO weekday 8
    {1: []},                                         # never open
    {1: [("9:00", "18:00")]},                       # HH:MM only
])
def test_bad_service_hours_are_refused(hours):
    with pytest.raises(ValueError):
        BusinessCalendar(hours)


def test_unknown_country_is_refused():
    with pytest.raises(ValueError):
        BusinessCalendar(country="XX")


def test_negative_duration_and_naive_instants_are_refused():
    with pytest.raises(ValueError):
        OFFICE.add_business_time(sh(2026, 3, 2, 10), -H)
    with pytest.raises(ValueError):
        OFFICE.add_business_time(dt.datetime(2026, 3, 2, 10), H)
    with pytest.raises(ValueError):
        OFFICE.business_time_between(sh(2026, 3, 2, 10), dt.datetime(2026, 3, 2, 11))


def test_calendar_is_immutable_and_hashable():
    with pytest.raises(AttributeError):
        OFFICE.timezone = "UTC"  # type: ignore[misc]
    assert hash(OFFICE) == hash(BusinessCalendar.office_hours())


# --------------------------------------------------------------------------- properties

CALENDARS = [OFFICE, NO_ADJUSTED, LUNCH, SHORT_FRIDAY, CLOSED_0303, ALWAYS,
             BERLIN_OFFICE, BERLIN_ALWAYS,
             BusinessCalendar({7: [("01:00", "04:00")], 3: [("00:00", "24:00")]},
                              "Europe/Berlin", "DE")]
calendars = st.sampled_from(CALENDARS)
instants = st.datetimes(min_value=dt.datetime(2025, 11, 1), max_value=dt.datetime(2027, 2, 1),
                        timezones=st.just(UTC))
durations = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=400))


@settings(deadline=None)
@given(calendars, instants, durations)
def test_business_time_between_undoes_add_business_time(calendar, start, duration):
    deadline = calendar.add_business_time(start, duration)
    assert deadline >= start
    assert calendar.business_time_between(start, deadline) == duration
    if duration:  # and it is the earliest such instant
        almost = deadline - dt.timedelta(microseconds=1)
        assert calendar.business_time_between(start, almost) < duration


@settings(deadline=None)
@given(calendars, instants, durations, durations)
def test_deadlines_grow_with_duration(calendar, start, d1, d2):
    d1, d2 = sorted((d1, d2))
    assert calendar.add_business_time(start, d1) <= calendar.add_business_time(start, d2)


@settings(deadline=None)
@given(calendars, instants, instants, durations)
def test_deadlines_grow_with_start(calendar, s1, s2, duration):
    s1, s2 = sorted((s1, s2))
    assert calendar.add_business_time(s1, duration) <= calendar.add_business_time(s2, duration)


@settings(deadline=None)
@given(calendars, instants, instants, instants)
def test_business_time_adds_up(calendar, a, b, c):
    a, b, c = sorted((a, b, c))
    between = calendar.business_time_between
    assert between(a, b) + between(b, c) == between(a, c)
    assert dt.timedelta(0) <= between(a, b) <= b - a


@settings(deadline=None)
@given(st.sampled_from([ALWAYS, BERLIN_ALWAYS]), instants, durations)
def test_round_the_clock_is_plain_addition(calendar, start, duration):
    assert calendar.add_business_time(start, duration) == start + duration


@settings(deadline=None)
@given(calendars, st.dates(min_value=D(2025, 11, 1), max_value=D(2027, 2, 1)),
       st.integers(min_value=1, max_value=60))
def test_working_days_between_undoes_add_working_days(calendar, day, n):
    due = calendar.add_working_days(day, n)
    assert calendar.is_working_day(due)
    assert calendar.working_days_between(day, due) == n
    assert calendar.add_working_days(day, n + 1) > due
