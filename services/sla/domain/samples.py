"""What a metric sample must say to be counted, and which windows it counts in."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

from services.sla.domain.periods import LAST_YEAR, PERIOD_PATTERN, Period, in_range
from shared.errors import field_error
from shared.events.sla import MetricSampleRecorded, TicketEventRecorded

# Which metric kinds each sample kind feeds.
FEEDS = {
    "interval_stats": ("service_level", "abandonment_rate"),
    "availability": ("availability",),
    "survey": ("csat",),
    "first_contact": ("first_contact_resolution",),
    "report_delivered": ("report_delivery",),
}
_REQUIRED = {
    "interval_stats": ("start", "end", "offered"),
    "availability": ("start", "state"),     # `end` too, except for an outage still going on or up from now on
    "survey": ("at",),
    "first_contact": ("at", "contacts", "resolved_first_contact"),
    "report_delivered": ("at", "report_period"),
}


# A source's clock may run a little ahead of ours; more than this ahead is not a fact yet.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
MAX_COUNT = 10 ** 9                  # calls, contacts or responses in one sample
MAX_SCORE = Decimal(10 ** 6)         # one survey score
MAX_SCORE_SUM = Decimal(10 ** 12)    # a batch of scores (the column holds 14 integer digits)
_COUNTS = ("offered", "answered_within_threshold", "abandoned", "responses", "contacts", "resolved_first_contact")


def check_ticket_event(event: TicketEventRecorded, pointer: str = "") -> list[dict]:
    problems = _instant_problems(event, ("at",), pointer)
    if event.kind == "opened" and event.priority is None:
        problems.append(field_error(f"{pointer}/priority", "an opened ticket needs its priority (P1-P4)"))
    return problems


def _instant_problems(item, names: tuple[str, ...], pointer: str) -> list[dict]:
    return [field_error(f"{pointer}/{name}", f"must lie in the years 2000 to {LAST_YEAR}")
            for name in names if getattr(item, name) is not None and not in_range(getattr(item, name))]


def check_timing(item: TicketEventRecorded | MetricSampleRecorded, now: dt.datetime, sla_starts: dt.datetime,
                 pointer: str = "") -> list[dict]:
    """An item's moment may not lie ahead of the service clock (beyond FUTURE_TOLERANCE) nor before the
    contract's SLA starts. A sample's `end` may lie ahead (planned maintenance is announced in advance)."""
    name = "at" if isinstance(item, TicketEventRecorded) or item.start is None else "start"
    moment = getattr(item, name)
    if moment is None:
        return []
    if moment > now + FUTURE_TOLERANCE:
        return [field_error(f"{pointer}/{name}", f"lies ahead of the service clock ({now.isoformat()}) by more "
                                                 f"than {int(FUTURE_TOLERANCE.total_seconds() // 60)} minutes")]
    if moment < sla_starts:
        return [field_error(f"{pointer}/{name}", f"before the contract's SLA starts ({sla_starts.isoformat()})")]
    return []


def sla_starts_at(effective_date: dt.date, timezone: str) -> dt.datetime:
    """The SLA starts at midnight of the contract's effective date, in the contract's time zone."""
    return dt.datetime.combine(effective_date, dt.time(), ZoneInfo(timezone)).astimezone(dt.timezone.utc)


def check_sample(sample: MetricSampleRecorded, pointer: str = "") -> list[dict]:
    """Problems with a sample, each named by JSON pointer (empty when it can be counted)."""
    problems = [field_error(f"{pointer}/{name}", f"required for a {sample.kind} sample")
                for name in _REQUIRED[sample.kind] if getattr(sample, name) is None]
    problems += _instant_problems(sample, ("start", "end", "at"), pointer)
    problems += [field_error(f"{pointer}/{name}", f"at most {MAX_COUNT:,} in one sample") for name in _COUNTS
                 if (getattr(sample, name) or 0) > MAX_COUNT]
    problems += _score_problems(sample, pointer)
    if sample.report_period is not None and not re.match(PERIOD_PATTERN, sample.report_period):
        problems.append(field_error(f"{pointer}/report_period", f"a month from 2000-01 to {LAST_YEAR}-12"))
    if problems:
        return problems     # the checks below compare values that must first be in range
    if sample.kind == "availability" and sample.state == "maintenance" and sample.end is None:
        problems.append(field_error(f"{pointer}/end", "planned maintenance needs its end"))
    if sample.start and sample.end and sample.end <= sample.start:
        problems.append(field_error(f"{pointer}/end", "must be after start"))
    if sample.kind == "interval_stats" and sample.offered is not None:
        for name in ("answered_within_threshold", "abandoned"):
            if (getattr(sample, name) or 0) > sample.offered:
                problems.append(field_error(f"{pointer}/{name}", "cannot exceed offered"))
    if sample.kind == "survey" and sample.score is None and (sample.responses is None or sample.score_sum is None):
        problems.append(field_error(f"{pointer}/score", "give a score, or responses and score_sum"))
    if sample.kind == "first_contact" and (sample.resolved_first_contact or 0) > (sample.contacts or 0):
        problems.append(field_error(f"{pointer}/resolved_first_contact", "cannot exceed contacts"))
    return problems


def _score_problems(sample: MetricSampleRecorded, pointer: str) -> list[dict]:
    bounds = (("score", MAX_SCORE), ("score_sum", MAX_SCORE_SUM))
    return [field_error(f"{pointer}/{name}", f"a finite number of at most {bound:,} in size")
            for name, bound in bounds
            if (value := getattr(sample, name)) is not None and not (value.is_finite() and abs(value) <= bound)]


def home_window(sample: MetricSampleRecorded, timezone: str) -> Period:
    """The window a sample is filed under: its start or moment; a report counts in the month it is due."""
    if sample.kind == "report_delivered":
        return Period.parse(sample.report_period).next()
    return Period.of(sample.start or sample.at, timezone)


def windows_touched(sample: MetricSampleRecorded, timezone: str, now: dt.datetime) -> list[Period]:
    """Every window a sample changes: an availability interval may run into the next month, and an
    outage still going on runs into every month up to the present."""
    first = home_window(sample, timezone)
    if sample.kind != "availability":
        return [first]
    last = Period.of(sample.end - dt.timedelta(microseconds=1), timezone) if sample.end else Period.of(now, timezone)
    return months(first, last)


def months(first: Period, last: Period) -> list[Period]:
    """`first` to `last`, both included."""
    out = [first]
    while out[-1] < last:
        out.append(out[-1].next())
    return out


def new_by_source(items: list, seen: set) -> tuple[list[str], list]:
    """Each item's status ("accepted", or "duplicate" when its (contract, source id) was seen before or
    earlier in the same batch) and the accepted ones, in order: a feed may send the same input twice."""
    statuses, fresh = [], []
    for item in items:
        key = (item.contract_id, item.source_id)
        if key in seen:
            statuses.append("duplicate")
            continue
        seen.add(key)
        statuses.append("accepted")
        fresh.append(item)
    return statuses, fresh
