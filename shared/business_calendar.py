"""The business calendar: working days and business time for mainland China (and elsewhere).

Three services share it: payments (due in N working days), contracts (change requests
assessed within N working days) and SLA (ticket deadlines in business time).

Two notions live here, deliberately kept apart:

* A **working day** (工作日) is the statutory notion: Monday to Friday, minus public holidays
  and the substituted days off, plus the adjusted working weekends (调休), minus the
  contract's own closures. It does not depend on the service hours, because "pay within
  10 working days" means the same thing for a call centre open on Sundays.
* **Business time** is the time inside the service hours. A day's hours come from the weekly
  template; public holidays, substituted days off and closures have none. On an adjusted
  working weekend the service keeps the hours of the weekday that the day stands in for (the
  State Council notice pairs each working Saturday/Sunday with one weekday off: 2026-09-20,
  a Sunday, is worked in place of Tuesday 2026-10-06, so it gets Tuesday's hours). When the
  pairing is not known, Monday's hours are used.

Holiday facts come from the `holidays` package, never from a table of our own; they are
computed once per (country, year). Instants go in timezone-aware and come out in UTC; all
wall-clock reasoning happens in the calendar's IANA zone through zoneinfo, so days of 23 or
25 hours are counted by their real length.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import holidays

UTC = dt.timezone.utc
ONE_DAY = dt.timedelta(days=1)
ZERO = dt.timedelta(0)
MONDAY = 1
WEEKDAYS = range(1, 8)  # ISO: 1 = Monday ... 7 = Sunday
SAT_SUN = frozenset({6, 7})

# Longest stretch of closed days we are prepared to walk through looking for an opening;
# beyond this the calendar is misconfigured (e.g. closures covering years), not busy.
MAX_CLOSED_DAYS = 3 * 366

Hours = tuple[tuple[str, str], ...]          # one day: (("09:00", "12:00"), ("13:00", "18:00"))
Week = tuple[Hours, Hours, Hours, Hours, Hours, Hours, Hours]  # index 0 = Monday


# --------------------------------------------------------------------------- holiday facts

@dataclass(frozen=True)
class _YearFacts:
    """What the `holidays` package says about one country and year."""
    days_off: frozenset[dt.date]                    # public holidays and substituted days off
    working_weekends: Mapping[dt.date, int | None]  # 调休 day -> ISO weekday it stands in for
    weekend: frozenset[int]                         # ISO weekdays


# The package labels a substituted day off "Day off (substituted from 09/20/2026)" in en_US;
# that label is the only public place the pairing with the working weekend is exposed.
_SUBSTITUTED_FROM = re.compile(r"substituted from (\d{1,2})/(\d{1,2})/(\d{4})")


@lru_cache(maxsize=None)
def _year_facts(country: str, year: int) -> _YearFacts:
    localized = holidays.list_localized_countries().get(country.upper(), ())
    language = "en_US" if "en_US" in localized else None
    calendar = holidays.country_holidays(country, years=year, language=language)
    weekend = frozenset(d + 1 for d in getattr(calendar, "weekend", {5, 6}))
    working_weekends: dict[dt.date, int | None] = dict.fromkeys(
        getattr(calendar, "weekend_workdays", ()))
    for day_off, name in calendar.items():
        for month, day, y in _SUBSTITUTED_FROM.findall(name):
            worked = dt.date(int(y), int(month), int(day))
            if worked in working_weekends:
                working_weekends[worked] = day_off.isoweekday()
    return _YearFacts(frozenset(calendar.keys()), MappingProxyType(working_weekends), weekend)


# --------------------------------------------------------------------------- service hours

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def _minutes(text: str) -> int:
    match = _HHMM.match(text)
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"time must be HH:MM between 00:00 and 24:00, got {text!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _normalise_day(weekday: int, intervals: Iterable[Sequence[str]]) -> Hours:
    pairs = sorted((tuple(i) for i in intervals), key=lambda p: _minutes(p[0]))
    previous_end = 0
    for start, end in pairs:
        if _minutes(start) >= _minutes(end):
            raise ValueError(f"weekday {weekday}: interval {start}-{end} is empty or reversed")
        if _minutes(start) < previous_end:
            raise ValueError(f"weekday {weekday}: interval {start}-{end} overlaps the previous one")
        if start == "24:00":
            raise ValueError(f"weekday {weekday}: 24:00 may only end an interval")
        previous_end = _minutes(end)
    return tuple((str(s), str(e)) for s, e in pairs)


def _normalise_week(hours: Mapping[Any, Iterable[Sequence[str]]] | Sequence[Hours]) -> Week:
    if isinstance(hours, Mapping):
        by_day = {int(k): v for k, v in hours.items()}  # JSON turns weekday keys into strings
        unknown = set(by_day) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"weekdays are ISO 1 (Monday) to 7 (Sunday), got {sorted(unknown)}")
        week = tuple(_normalise_day(w, by_day.get(w, ())) for w in WEEKDAYS)
    else:
        week = tuple(_normalise_day(w, day) for w, day in zip(WEEKDAYS, hours, strict=True))
    if not any(week):
        raise ValueError("service hours are empty on every weekday; nothing would ever be open")
    return week  # type: ignore[return-value]


def _hours_dict(days: Iterable[int], start: str, end: str) -> dict[int, list[tuple[str, str]]]:
    return {d: [(start, end)] for d in days}


OFFICE_WEEK = _hours_dict(range(1, 6), "09:00", "18:00")
ROUND_THE_CLOCK = _hours_dict(WEEKDAYS, "00:00", "24:00")


# --------------------------------------------------------------------------- the calendar

@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and business time for one service.

    `service_hours` maps ISO weekday (1 = Monday) to opening intervals ("HH:MM", "HH:MM");
    "24:00" may end an interval; a missing or empty weekday is closed. It is normalised to a
    tuple of seven days (Monday first) so the calendar is immutable and hashable.
    `country=None` applies no public holidays and no adjusted working weekends.
    `adjusted_workdays=False` treats 调休 weekends as ordinary weekends (the substituted days
    off stay off: they are holidays in the notice).
    """
    service_hours: Week | Mapping[int, Sequence[tuple[str, str]]] = field(
        default_factory=lambda: OFFICE_WEEK)
    timezone: str = "Asia/Shanghai"
    country: str | None = "CN"
    closures: frozenset[dt.date] = frozenset()
    adjusted_workdays: bool = True
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _week: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        week = _normalise_week(self.service_hours)
        object.__setattr__(self, "service_hours", week)
        object.__setattr__(self, "closures", frozenset(self.closures))
        object.__setattr__(self, "country", self.country.upper() if self.country else None)
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        # Intervals in minutes after local midnight, parsed once rather than on every day.
        object.__setattr__(self, "_week", tuple(
            tuple((_minutes(s), _minutes(e)) for s, e in day) for day in week))
        if self.country and self.country not in holidays.list_supported_countries():
            raise ValueError(f"the holidays package does not know country {self.country!r}")

    # ---- factories

    @classmethod
    def office_hours(cls, *, timezone: str = "Asia/Shanghai", country: str | None = "CN",
                     closures: Iterable[dt.date] = ()) -> BusinessCalendar:
        """Monday to Friday 09:00-18:00, public holidays off, adjusted weekends worked."""
        return cls(OFFICE_WEEK, timezone, country, frozenset(closures))

    @classmethod
    def always_open(cls, *, timezone: str = "Asia/Shanghai") -> BusinessCalendar:
        """24x7 without holidays: business time is elapsed time. Working days stay Mon-Fri."""
        return cls(ROUND_THE_CLOCK, timezone, None)

    @classmethod
    def from_service_hours(cls, service_hours: Any, *,
                           adjusted_workdays: bool = True) -> BusinessCalendar:
        """Build from `shared.events.contracts.ServiceHours` or a mapping of the same shape.

        A week open round the clock on all seven days is a 24x7 service: holidays do not
        close it, whatever `country` says (the field defaults to "CN", so a contract author
        writing 24x7 hours would otherwise get a week of National Day added to every P1).
        An empty `country` means no holidays either.
        """
        get = service_hours.get if isinstance(service_hours, Mapping) else \
            lambda name, default=None: getattr(service_hours, name, default)
        week = _normalise_week(get("hours"))
        country = get("country", "CN")
        if week == _normalise_week(ROUND_THE_CLOCK):
            country = None
        return cls(week, get("timezone", "Asia/Shanghai") or "Asia/Shanghai", country,
                   frozenset(get("closures", ()) or ()), adjusted_workdays)

    # ---- working days

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.closures:
            return False
        facts = self._facts(day)
        if facts is None:
            return day.isoweekday() not in SAT_SUN
        if day in facts.days_off:
            return False
        if day.isoweekday() in facts.weekend:
            return self.adjusted_workdays and self._stands_in_for(day) is not None
        return True

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        """The n-th working day after `day`.

        n = 0 is `day` itself when it is a working day, else the next working day: a payment
        "due on the day" triggered on a Saturday is due on Monday. For n >= 1 counting starts
        the day after `day`, so a non-working `day` gives the same answer for n = 0 and 1.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return self._next_working_day(day)
        for _ in range(n):
            day = self._next_working_day(day + ONE_DAY)
        return day

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days d with start < d <= end (negative when end is before start).

        The inverse of add_working_days: working_days_between(a, add_working_days(a, n)) == n
        for every n >= 1.
        """
        if end < start:
            return -self.working_days_between(end, start)
        days = (start + ONE_DAY * i for i in range(1, (end - start).days + 1))
        return sum(1 for d in days if self.is_working_day(d))

    def nth_working_day_of_month(self, year: int, month: int, n: int) -> dt.date:
        """Working day n (1-based) of the month, e.g. "report delivered by working day 5"."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        day = self.add_working_days(dt.date(year, month, 1) - ONE_DAY, n)
        if (day.year, day.month) != (year, month):
            raise ValueError(f"{year}-{month:02d} has fewer than {n} working days")
        return day

    # ---- business time

    def is_open(self, at: dt.datetime) -> bool:
        _require_aware(at)
        at = at.astimezone(UTC)
        return self.next_opening(at) == at

    def next_opening(self, at: dt.datetime) -> dt.datetime:
        """`at` (in UTC) when the service is open, else the moment it next opens."""
        _require_aware(at)
        at = at.astimezone(UTC)
        for opens, closes in self._openings(self._local_date(at) - ONE_DAY, at):
            if closes > at:
                return max(opens, at)
        raise AssertionError("unreachable: _openings is endless")  # pragma: no cover

    def add_business_time(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The earliest instant t with business_time_between(start, t) == duration, in UTC.

        Outside the service hours the clock starts at the next opening. A deadline that uses
        up an interval exactly falls on its closing time (18:00), not on the next opening.
        Zero duration returns `start` itself.
        """
        _require_aware(start)
        if duration < ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        now = start.astimezone(UTC)
        remaining = duration
        if not remaining:
            return now
        for opens, closes in self._openings(self._local_date(now) - ONE_DAY, now):
            if closes <= now:
                continue
            begin = max(opens, now)
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
            now = closes
        raise AssertionError("unreachable: _openings is endless")  # pragma: no cover

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Business time elapsed from start to end (negative when end is before start)."""
        _require_aware(start)
        _require_aware(end)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end < start:
            return -self.business_time_between(end, start)
        total = ZERO
        for opens, closes in self._openings(self._local_date(start) - ONE_DAY, start):
            if opens >= end:
                break
            total += max(ZERO, min(closes, end) - max(opens, start))
        return total

    # ---- internals

    def _facts(self, day: dt.date) -> _YearFacts | None:
        return _year_facts(self.country, day.year) if self.country else None

    def _stands_in_for(self, day: dt.date) -> int | None:
        """For an adjusted working weekend: the ISO weekday it replaces (Monday if unknown).

        A working weekend may be listed under the following year (a late-December Sunday
        worked for a January day off), so both years are consulted.
        """
        listed = False
        for year in (day.year, day.year + 1):
            working_weekends = _year_facts(self.country, year).working_weekends  # type: ignore[arg-type]
            if working_weekends.get(day):
                return working_weekends[day]
            listed = listed or day in working_weekends
        return MONDAY if listed else None

    def _next_working_day(self, day: dt.date) -> dt.date:
        for _ in range(MAX_CLOSED_DAYS):
            if self.is_working_day(day):
                return day
            day += ONE_DAY
        raise ValueError(f"no working day within {MAX_CLOSED_DAYS} days of {day}")

    def _hours_of(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        """Opening intervals of one local date, in minutes after local midnight."""
        if day in self.closures:
            return ()
        facts = self._facts(day)
        if facts is None:
            return self._week[day.isoweekday() - 1]
        if day in facts.days_off:
            return ()
        weekday = day.isoweekday()
        if weekday in facts.weekend and self.adjusted_workdays:
            weekday = self._stands_in_for(day) or weekday
        return self._week[weekday - 1]

    def _openings(self, day: dt.date, not_before: dt.datetime
                  ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Opening intervals as UTC instants, in order, from local date `day` on, endless.

        Wall-clock times in a DST gap are read with zoneinfo's fold=0 rule; clamping each
        interval to the end of the previous one keeps intervals disjoint in real time even
        there. Raises if nothing opens for MAX_CLOSED_DAYS days after `not_before`.
        """
        previous_close = dt.datetime.min.replace(tzinfo=UTC)
        closed_days = 0
        while True:
            hours = self._hours_of(day)
            midnight = dt.datetime.combine(day, dt.time())
            for start, end in hours:
                opens = self._instant(midnight, start)
                closes = self._instant(midnight, end)
                opens = max(opens, previous_close)
                closes = max(closes, opens)
                previous_close = closes
                if closes > opens:
                    yield opens, closes
            if hours and previous_close > not_before:
                closed_days = 0
            else:
                closed_days += 1
                if closed_days > MAX_CLOSED_DAYS:
                    raise ValueError(f"nothing opens within {MAX_CLOSED_DAYS} days of {not_before}")
            day += ONE_DAY

    def _instant(self, local_midnight: dt.datetime, minutes: int) -> dt.datetime:
        if minutes == 24 * 60:  # "24:00" is the next day's midnight, whatever its UTC offset
            wall = local_midnight + ONE_DAY
        else:
            wall = local_midnight + dt.timedelta(minutes=minutes)
        return wall.replace(tzinfo=self._zone).astimezone(UTC)

    def _local_date(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self._zone).date()


def _require_aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"instants must be timezone-aware, got naive {at}")
