"""When a triggered tranche falls due, on the mainland-China calendar.

"Within N working days" counts statutory working days: public holidays and substituted days
off are skipped, adjusted working weekends (调休) count (shared.business_calendar).

"Within N calendar days" counts every day, but a period whose last day is a statutory day of
rest ends on the next working day instead (Civil Code art. 203: 期间的最后一日是法定休假日的,
以法定休假日结束的次日为期间的最后一日; weekends are days of rest too). So 30 calendar days
from 2027-09-30 is Saturday 2027-10-30, and the tranche is due on Monday 2027-11-01.
"""
from __future__ import annotations

import calendar as _calendar
import datetime as dt
from dataclasses import dataclass
from typing import Literal

from shared.business_calendar import BusinessCalendar

MAINLAND = BusinessCalendar.office_hours(country="CN")

DueUnit = Literal["calendar_days", "working_days"]


@dataclass(frozen=True)
class DueTerm:
    days: int
    unit: DueUnit = "calendar_days"

    def due_date(self, triggered_on: dt.date, calendar: BusinessCalendar = MAINLAND) -> dt.date:
        if self.unit == "working_days":
            return calendar.add_working_days(triggered_on, self.days)
        last_day = triggered_on + dt.timedelta(days=self.days)
        return calendar.add_working_days(last_day, 0)  # rolls a day of rest forward (art. 203)


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day of the month `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))
