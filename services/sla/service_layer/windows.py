"""Windows: where each metric stands in its month, measured again whenever its input changes."""
from __future__ import annotations

import datetime as dt
from typing import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from services.sla.adapters import repository as repo
from services.sla.adapters.stream import publish
from services.sla.adapters.tables import PeriodRow, SampleRow, TicketClockRow, WindowResultRow
from services.sla.domain import compliance
from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import TICKET_KINDS, MetricDefinition, SlaDefinition
from services.sla.domain.periods import Period
from services.sla.domain.samples import FEEDS
from services.sla.domain.ticket_clock import TimerPlan, ticket_standing
from services.sla.domain.time_basis import basis_for
from services.sla.service_layer.closing import announce_close
from services.sla.service_layer.timers import sync_timers
from shared.business_calendar import BusinessCalendar
from shared.events.sla import SlaAtRisk, SlaBreached, SlaRecovered
from shared.uow import UnitOfWork

TIMER_DRIVEN = TICKET_KINDS | {"report_delivery"}
STANDING_RANK = {"no_data": 0, "ok": 0, "at_risk": 1, "breached": 2}
WindowKey = tuple[str, str]          # (metric key, period)


def refresh_windows(uow: UnitOfWork, definition: SlaDefinition, keys: Iterable[WindowKey], now: dt.datetime) -> None:
    """Measure windows again after their input changed; a month already closed is closed again if that changed it."""
    keys = sorted(set(keys))
    for key, period in keys:
        metric = definition.metric(key)
        if metric is not None:
            refresh_window(uow, definition, metric, Period.parse(period), now)
    _close_again(uow, definition, {period for _, period in keys}, now)


def _close_again(uow: UnitOfWork, definition: SlaDefinition, periods: set[str], now: dt.datetime) -> None:
    """Late input (or a late deadline passing) in a closed month: its compliance and credit are announced again
    if they changed. The month's row is locked first, so concurrent corrections are numbered one after another."""
    if not periods:
        return
    rows = uow.session.scalars(select(PeriodRow).where(
        PeriodRow.contract_id == definition.contract_id, PeriodRow.period.in_(sorted(periods)),
        PeriodRow.status == "closed").order_by(PeriodRow.period).with_for_update()).all()
    for row in rows:
        period = Period.parse(row.period)
        outcomes = [(m, refresh_window(uow, definition, m, period, now, closing=True)) for m in definition.metrics]
        announce_close(uow, definition, row, outcomes, now)


def refresh_window(uow: UnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                   now: dt.datetime, closing: bool = False) -> WindowOutcome:
    """Measure one metric's window again, store where it stands, and announce a change of standing."""
    session = uow.session
    row = session.scalar(select(WindowResultRow).where(WindowResultRow.contract_id == definition.contract_id,
                                                       WindowResultRow.metric_key == metric.key,
                                                       WindowResultRow.period == str(period)))
    if row is None:
        repo.insert_ignoring_conflicts(session, WindowResultRow, [dict(
            id=repo.new_id(), org=definition.org, contract_id=definition.contract_id, metric_key=metric.key,
            period=str(period), status="no_data", closed=False, items=0, breaches=0, miss=0, updated_at=now)])
        row = session.scalar(select(WindowResultRow).where(WindowResultRow.contract_id == definition.contract_id,
                                                           WindowResultRow.metric_key == metric.key,
                                                           WindowResultRow.period == str(period)))
    closed = closing or row.closed
    outcome = measure_window(session, definition, metric, period, now, closed)
    previous = row.status
    row.status, row.actual, row.met, row.items, row.breaches = (outcome.status, outcome.actual, outcome.met,
                                                                outcome.items, outcome.breaches)
    row.miss, row.closed, row.updated_at = outcome.miss, closed, now
    if metric.kind == "report_delivery":
        _arm_report_timers(uow, definition, metric, period, now)
    elif metric.kind not in TIMER_DRIVEN:
        _announce_change(uow, definition, metric, period, previous, outcome, now)
    if metric.kind == "availability":
        _arm_downtime_timers(uow, definition, metric, period, now, closed)
    session.flush()
    return outcome


def _announce_change(uow: UnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                     previous: str, outcome: WindowOutcome, now: dt.datetime) -> None:
    before, after = STANDING_RANK[previous], STANDING_RANK[outcome.status]
    common = dict(contract_id=definition.contract_id, org=definition.org, metric_key=metric.key,
                  metric_kind=metric.kind, period=str(period), target=metric.terms.target, actual=outcome.actual)
    if after > before and outcome.status == "at_risk":
        publish(uow, SlaAtRisk(at=now, **common))
    elif after > before:
        publish(uow, SlaBreached(breached_at=now, detected_at=now, **common))
    elif after < before:
        publish(uow, SlaRecovered(previous_status=previous, status=outcome.status, **common))


def measure_window(session: Session, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                   now: dt.datetime, closed: bool) -> WindowOutcome:
    """Where a metric stands in a window at `now` (read only; the dashboards call it too)."""
    tz, kind, terms = definition.timezone, metric.kind, metric.terms
    start, end = period.starts_at(tz), period.ends_at(tz)
    if kind in TICKET_KINDS:
        return _ticket_window(session, definition, metric, period, now)
    if kind == "report_delivery":
        if not _report_owed(definition, period):
            return compliance.NO_DATA
        due, delivered = report_deadline(definition, metric, period), _report_delivered_at(session, definition, metric, period)
        return _report_outcome(definition, metric, period, due, delivered, now)
    if kind == "availability":
        down, planned = _availability_facts(session, definition, metric, (start, end))
        return compliance.availability(terms, (start, end), down, planned, now, closed)
    sample_kind = next(k for k, kinds in FEEDS.items() if kind in kinds)
    sums = session.execute(select(
        func.coalesce(func.sum(SampleRow.offered), 0), func.coalesce(func.sum(SampleRow.answered_within_threshold), 0),
        func.coalesce(func.sum(SampleRow.abandoned), 0), func.coalesce(func.sum(SampleRow.responses), 0),
        func.coalesce(func.sum(SampleRow.score_sum), 0), func.coalesce(func.sum(SampleRow.contacts), 0),
        func.coalesce(func.sum(SampleRow.resolved_first_contact), 0),
    ).where(*_samples_of(definition, metric, sample_kind), SampleRow.start >= start, SampleRow.start < end)).one()
    offered, answered, abandoned, responses, score_sum, contacts, first = sums
    if kind == "service_level":
        return compliance.service_level(terms, answered, offered, closed)
    if kind == "abandonment_rate":
        return compliance.abandonment(terms, abandoned, offered, closed)
    if kind == "csat":
        return compliance.csat(terms, score_sum, responses, closed)
    return compliance.first_contact_resolution(terms, first, contacts, closed)


def _samples_of(definition: SlaDefinition, metric: MetricDefinition, sample_kind: str) -> list:
    return [SampleRow.contract_id == definition.contract_id, SampleRow.kind == sample_kind,
            (SampleRow.metric_key.is_(None)) | (SampleRow.metric_key == metric.key)]


def _availability_facts(session: Session, definition: SlaDefinition, metric: MetricDefinition,
                        window: compliance.Interval) -> tuple[list, list]:
    """Outages and planned maintenance reaching into the window; an outage still going on ends at the
    first `up` reported after it began, or, with none yet, runs on to the window's end."""
    start, end = window
    rows = session.execute(select(SampleRow.start, SampleRow.end, SampleRow.state).where(
        *_samples_of(definition, metric, "availability"), SampleRow.start < end,
        (SampleRow.end > start) | SampleRow.end.is_(None))).all()
    down = [(s, e or _outage_end(session, definition, metric, s) or end) for s, e, state in rows if state == "down"]
    planned = [(s, e) for s, e, state in rows if state == "maintenance"]
    return down, planned


def _outage_end(session: Session, definition: SlaDefinition, metric: MetricDefinition,
                began: dt.datetime) -> dt.datetime | None:
    return session.scalar(select(func.min(SampleRow.start)).where(
        *_samples_of(definition, metric, "availability"), SampleRow.state == "up", SampleRow.start >= began))


def _arm_downtime_timers(uow: UnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                         now: dt.datetime, closed: bool) -> None:
    """While an outage goes on, the moments it will use up the at-risk share and the whole of the month's
    allowed downtime are due even if no input arrives. Moments already past were announced by the window."""
    tz = definition.timezone
    window = (period.starts_at(tz), period.ends_at(tz))
    down, planned = _availability_facts(uow.session, definition, metric, window)
    crossings = {} if closed else compliance.downtime_crossings(metric.terms, window, down, planned)
    ahead = {kind: at for kind, at in crossings.items() if at > now}
    actual = {kind: str(compliance.availability(metric.terms, window, down, planned, at, False).actual)
              for kind, at in ahead.items()}
    breach = crossings.get("breach")
    sync_timers(uow, definition, metric.key, str(period), str(period),
                [TimerPlan(kind, 1, at) for kind, at in ahead.items()],
                {"deadline": breach.isoformat() if breach else None, "actual": actual}, now, retract_breaches=False)


def _ticket_window(session: Session, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                   now: dt.datetime) -> WindowOutcome:
    """Counted in SQL: only the breached clocks are loaded (each breach's overrun is read at `now`), so the
    cost does not grow with the tickets the month holds."""
    in_window = (TicketClockRow.contract_id == definition.contract_id, TicketClockRow.metric_key == metric.key,
                 TicketClockRow.period == str(period))
    breached = TicketClockRow.breached_at.is_not(None) & (TicketClockRow.breached_at <= now)
    at_risk = (TicketClockRow.state.in_(("running", "paused")) & TicketClockRow.at_risk_at.is_not(None)
               & (TicketClockRow.at_risk_at <= now) & ~breached)
    items, risky = session.execute(select(
        func.count(), func.coalesce(func.sum(case((at_risk, 1), else_=0)), 0)).where(*in_window)).one()
    basis = basis_for(metric.terms, definition.service_hours)
    misses = [ticket_standing(state=r.state, elapsed=dt.timedelta(seconds=float(r.elapsed_seconds)),
                              running_since=r.running_since, at_risk_at=r.at_risk_at, breached_at=r.breached_at,
                              settled_miss=r.miss, allowed=metric.allowed_time, basis=basis, now=now).miss
              for r in session.scalars(select(TicketClockRow).where(*in_window, breached))]
    return compliance.ticket_counts(int(items), int(risky), misses)


def calendar_of(definition: SlaDefinition) -> BusinessCalendar:
    """Statutory working days where the contract is served (a 24x7 service still counts reports in working days)."""
    hours = definition.service_hours
    return BusinessCalendar.office_hours(timezone=hours.timezone, country=hours.country or None,
                                         closures=hours.closures)


def report_deadline(definition: SlaDefinition, metric: MetricDefinition, period: Period) -> dt.datetime:
    """The previous month's report is due by the end of working day N of `period`."""
    return compliance.report_due(calendar_of(definition), period.first_day(), int(metric.terms.target),
                                 definition.timezone)


def _report_owed(definition: SlaDefinition, window: Period) -> bool:
    """A report is owed in `window` for the month before it, if the contract ran during that month."""
    covered = window.previous()
    return covered.first_day() <= definition.end_date and window.first_day() > definition.effective_date


def _report_delivered_at(session: Session, definition: SlaDefinition, metric: MetricDefinition,
                         period: Period) -> dt.datetime | None:
    return session.scalar(select(func.min(SampleRow.start)).where(
        *_samples_of(definition, metric, "report_delivered"), SampleRow.report_period == str(period.previous())))


def _report_outcome(definition: SlaDefinition, metric: MetricDefinition, period: Period, due: dt.datetime,
                    delivered: dt.datetime | None, now: dt.datetime) -> WindowOutcome:
    calendar, day_before = calendar_of(definition), period.first_day() - dt.timedelta(days=1)
    working_day = late = None
    if delivered is not None:
        delivered_on = delivered.astimezone(ZoneInfo(definition.timezone)).date()
        working_day = max(0, calendar.working_days_between(day_before, delivered_on))
        late = max(0, working_day - int(metric.terms.target))
    return compliance.report_delivery(metric.terms, due, delivered, working_day, late or 0, now)


def _arm_report_timers(uow: UnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                       now: dt.datetime) -> None:
    """A report still owed: at risk once the at-risk share of its working days is used, breached after the last."""
    due = report_deadline(definition, metric, period)
    delivered = _report_delivered_at(uow.session, definition, metric, period)
    owed = _report_owed(definition, period) and not (delivered is not None and delivered < due)
    at_risk = compliance.report_at_risk(calendar_of(definition), period.first_day(), int(metric.terms.target),
                                        metric.terms.at_risk_share, definition.timezone)
    plans = [TimerPlan("at_risk", 1, at_risk), TimerPlan("breach", 1, due)] if owed else []
    sync_timers(uow, definition, metric.key, str(period), str(period), plans,
                {"report_period": str(period.previous()), "deadline": due.isoformat()}, now)
