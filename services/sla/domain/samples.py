"""What a metric sample must say to be counted, and which windows it counts in."""
from __future__ import annotations

import datetime as dt

from services.sla.domain.periods import Period
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


def check_ticket_event(event: TicketEventRecorded, pointer: str = "") -> list[dict]:
    if event.kind == "opened" and event.priority is None:
        return [field_error(f"{pointer}/priority", "an opened ticket needs its priority (P1-P4)")]
    return []


def check_sample(sample: MetricSampleRecorded, pointer: str = "") -> list[dict]:
    """Problems with a sample, each named by JSON pointer (empty when it can be counted)."""
    problems = [field_error(f"{pointer}/{name}", f"required for a {sample.kind} sample")
                for name in _REQUIRED[sample.kind] if getattr(sample, name) is None]
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
