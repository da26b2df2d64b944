"""How a metric's clock counts time: business time (the contract's service hours, holidays and
adjusted working weekends) or plain calendar time (every second counts)."""
from __future__ import annotations

import datetime as dt
from typing import Protocol

from shared.events.contracts import ServiceHours, SlaMetric


class TimeBasis(Protocol):
    def add_business_time(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime: ...

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta: ...


class CalendarTime:
    """Every second counts, nights, weekends and holidays included."""

    def add_business_time(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        return (start + amount).astimezone(dt.timezone.utc)

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        return end - start


def basis_for(metric: SlaMetric, hours: ServiceHours) -> TimeBasis:
    if metric.time_basis == "calendar":
        return CalendarTime()
    from shared.business_calendar import BusinessCalendar

    return BusinessCalendar.from_service_hours(hours)
