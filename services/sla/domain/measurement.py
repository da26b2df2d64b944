"""Measuring a window: where one metric stands in one month, from the facts the adapters count.

The counting (sums, counts, the breached clocks) is done by whoever implements `WindowFacts`
(the repository, in SQL; a test, in memory); what the count means against the promise is decided
here and in `compliance`. The use cases and the read models both measure through this one function.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Protocol, Sequence
from zoneinfo import ZoneInfo

from services.sla.domain import compliance
from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import TICKET_KINDS, MetricDefinition, SlaDefinition
from services.sla.domain.periods import Period
from services.sla.domain.samples import FEEDS
from services.sla.domain.ticket_clock import ticket_standing
from services.sla.domain.time_basis import basis_for
from shared.business_calendar import BusinessCalendar
from shared.local_time import local_date

TIMER_DRIVEN = TICKET_KINDS | {"report_delivery"}


class WindowFacts(Protocol):
    def ticket_window(self, org: str, contract_id: str, metric_key: str, period: str,
                      now: dt.datetime) -> tuple[int, int, Sequence[Any]]: ...

    def sample_sums(self, org: str, contract_id: str, metric_key: str, sample_kind: str, start: dt.datetime,
                    end: dt.datetime) -> tuple: ...

    def availability(self, org: str, contract_id: str, metric_key: str, start: dt.datetime,
                     end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime | None, str]]: ...

    def report_delivered_at(self, org: str, contract_id: str, metric_key: str,
                            report_period: str) -> dt.datetime | None: ...


def measure_window(facts: WindowFacts, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                   now: dt.datetime, closed: bool) -> WindowOutcome:
    """Where a metric stands in a window at `now` (read only)."""
    tz, kind, terms = definition.timezone, metric.kind, metric.terms
    start, end = period.starts_at(tz), period.ends_at(tz)
    if kind in TICKET_KINDS:
        return _ticket_window(facts, definition, metric, period, now)
    if kind == "report_delivery":
        if not report_owed(definition, period):
            return compliance.NO_DATA
        due = report_deadline(definition, metric, period)
        return report_outcome(definition, metric, period, due, report_delivered_at(facts, definition, metric, period),
                              now)
    if kind == "availability":
        down, planned = availability_facts(facts, definition, metric, (start, end))
        return compliance.availability(terms, (start, end), down, planned, now, closed)
    sample_kind = next(k for k, kinds in FEEDS.items() if kind in kinds)
    offered, answered, abandoned, responses, score_sum, contacts, first = facts.sample_sums(
        definition.org, definition.contract_id, metric.key, sample_kind, start, end)
    if kind == "service_level":
        return compliance.service_level(terms, answered, offered, closed)
    if kind == "abandonment_rate":
        return compliance.abandonment(terms, abandoned, offered, closed)
    if kind == "csat":
        return compliance.csat(terms, score_sum, responses, closed)
    return compliance.first_contact_resolution(terms, first, contacts, closed)


def _ticket_window(facts: WindowFacts, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                   now: dt.datetime) -> WindowOutcome:
    """Only the breached clocks are read one by one (each breach's overrun at `now`)."""
    items, risky, breached = facts.ticket_window(definition.org, definition.contract_id, metric.key, str(period), now)
    basis = basis_for(metric.terms, definition.service_hours)
    misses = [ticket_standing(state=r.state, elapsed=dt.timedelta(seconds=float(r.elapsed_seconds)),
                              running_since=r.running_since, at_risk_at=r.at_risk_at, breached_at=r.breached_at,
                              settled_miss=r.miss, allowed=metric.allowed_time, basis=basis, now=now).miss
              for r in breached]
    return compliance.ticket_counts(items, risky, misses)


def availability_facts(facts: WindowFacts, definition: SlaDefinition, metric: MetricDefinition,
                       window: compliance.Interval) -> tuple[list, list]:
    """Outages and planned maintenance reaching into the window; an outage still going on ends at the
    first `up` reported after it began, or, with none yet, runs on to the window's end."""
    start, end = window
    rows = facts.availability(definition.org, definition.contract_id, metric.key, start, end)
    down = [(s, e or end) for s, e, state in rows if state == "down"]
    planned = [(s, e) for s, e, state in rows if state == "maintenance"]
    return down, planned


def calendar_of(definition: SlaDefinition) -> BusinessCalendar:
    """Statutory working days where the contract is served (a 24x7 service still counts reports in working days)."""
    hours = definition.service_hours
    return BusinessCalendar.office_hours(timezone=hours.timezone, country=hours.country or None,
                                         closures=hours.closures)


def report_deadline(definition: SlaDefinition, metric: MetricDefinition, period: Period) -> dt.datetime:
    """The previous month's report is due by the end of working day N of `period`."""
    return compliance.report_due(calendar_of(definition), period.first_day(), int(metric.terms.target),
                                 definition.timezone)


def report_owed(definition: SlaDefinition, window: Period) -> bool:
    """A report is owed in `window` for the month before it, if the contract ran during that month."""
    covered = window.previous()
    return covered.first_day() <= definition.end_date and window.first_day() > definition.effective_date


def report_delivered_at(facts: WindowFacts, definition: SlaDefinition, metric: MetricDefinition,
                        period: Period) -> dt.datetime | None:
    return facts.report_delivered_at(definition.org, definition.contract_id, metric.key,
                                     str(period.previous()))


def report_outcome(definition: SlaDefinition, metric: MetricDefinition, period: Period, due: dt.datetime,
                   delivered: dt.datetime | None, now: dt.datetime) -> WindowOutcome:
    calendar, day_before = calendar_of(definition), period.first_day() - dt.timedelta(days=1)
    working_day = late = None
    if delivered is not None:
        delivered_on = local_date(delivered, ZoneInfo(definition.timezone))
        working_day = max(0, calendar.working_days_between(day_before, delivered_on))
        late = max(0, working_day - int(metric.terms.target))
    return compliance.report_delivery(metric.terms, due, delivered, working_day, late or 0, now)
