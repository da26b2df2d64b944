"""Monthly windows, reckoned in the contract's own time zone and stored as UTC instants."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


# The months and instants the service reckons with: input outside them is refused, never overflows a
# date (a month of year 0 or 10000 has no first instant).
FIRST_YEAR, LAST_YEAR = 2000, 2100
EARLIEST = dt.datetime(FIRST_YEAR, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(LAST_YEAR + 1, 1, 1, tzinfo=dt.timezone.utc)
PERIOD_PATTERN = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$"   # 2000-01 .. 2100-12


def in_range(instant: dt.datetime) -> bool:
    return EARLIEST <= instant < LATEST


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month of a contract, written "2026-10"."""
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "Period":
        year, month = text.split("-")
        period = cls(int(year), int(month))
        if not 1 <= period.month <= 12:
            raise ValueError(f"not a month: {text!r}")
        return period

    @classmethod
    def of(cls, instant: dt.datetime, timezone: str) -> "Period":
        """The month `instant` falls in, as the contract's clock on the wall reads it."""
        local = instant.astimezone(ZoneInfo(timezone))
        return cls(local.year, local.month)

    @classmethod
    def of_date(cls, day: dt.date) -> "Period":
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> "Period":
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Period":
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    def starts_at(self, timezone: str) -> dt.datetime:
        local = dt.datetime(self.year, self.month, 1, tzinfo=ZoneInfo(timezone))
        return local.astimezone(dt.timezone.utc)

    def ends_at(self, timezone: str) -> dt.datetime:
        """The first instant of the next month (windows are half-open)."""
        return self.next().starts_at(timezone)

    def contains(self, instant: dt.datetime, timezone: str) -> bool:
        return self.starts_at(timezone) <= instant < self.ends_at(timezone)
