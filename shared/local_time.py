"""Local dates on the mainland: contract, payment and SLA dates are Asia/Shanghai dates of UTC instants."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def local_date(at: dt.datetime, tz: ZoneInfo = SHANGHAI) -> dt.date:
    """The calendar date in `tz` (Asia/Shanghai unless said) of an aware instant."""
    if at.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return at.astimezone(tz).date()


def next_local_midnight(at: dt.datetime, tz: ZoneInfo = SHANGHAI) -> dt.datetime:
    """The next start of a day in `tz` (when day-based work such as overdue falls due), as UTC."""
    tomorrow = local_date(at, tz) + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(), tz).astimezone(UTC)
