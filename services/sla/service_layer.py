"""Use cases of the sla service: what happens when terms, tickets, samples or time arrive.

The HTTP routes, the event handlers and the scheduled jobs all come here; this layer loads
state through the repository, asks the domain what it means, saves the result and publishes
events, all inside the caller's unit of work (it never commits: the caller does).

Two kinds of metric speak differently:
- timer-driven ones (ticket first response and resolution, report delivery) speak through
  rows in `sla_timers`: an instant at which `sla.at_risk` or `sla.breached` is due, fired once
  by the timers job even if no input ever arrives;
- window metrics (service level, abandonment, availability, FCR, CSAT) speak when their
  window's standing changes (ok → at risk → breached, and back: `sla.recovered`).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.sla.adapters import repository as repo
from services.sla.adapters.stream import publish
from services.sla.adapters.tables import (PeriodRow, SampleRow, TicketClockRow, TicketEventRow, TimerRow,
                                          WindowResultRow)
from services.sla.domain import compliance, credits
from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import (TICKET_KINDS, MetricDefinition, SlaDefinition, amend,
                                             definition_from_terms)
from services.sla.domain.periods import Period
from services.sla.domain.samples import FEEDS, windows_touched
from services.sla.domain.ticket_clock import TicketEvent, TimerPlan, read_clock, ticket_standing
from services.sla.domain.time_basis import basis_for
from shared.business_calendar import BusinessCalendar
from shared.errors import Conflict
from shared.events.contracts import ContractTerms
from shared.events.sla import (MetricCompliance, MetricSampleRecorded, MetricSummary, SlaAtRisk, SlaBreached,
                               SlaCreditAssessed, SlaDefinitionCreated, SlaDefinitionUpdated, SlaPeriodClosed,
                               SlaRecovered, TicketEventRecorded)
from shared.scheduler import claim
from shared.uow import UnitOfWork

TIMER_DRIVEN = TICKET_KINDS | {"report_delivery"}
_RANK = {"no_data": 0, "ok": 0, "at_risk": 1, "breached": 2}
WindowKey = tuple[str, str]          # (metric key, period)


# --- definitions -------------------------------------------------------------------------------

def apply_contract_terms(uow: UnitOfWork, terms: ContractTerms, now: dt.datetime) -> SlaDefinition | None:
    """From `contract.activated` / `contract.amended`: the terms carry the whole SLA."""
    return apply_definition(uow, definition_from_terms(terms), now)


def apply_definition(uow: UnitOfWork, proposed: SlaDefinition, now: dt.datetime) -> SlaDefinition | None:
    """Create the definition, or amend it to a newer contract version (a version already applied is ignored)."""
    session = uow.session
    current = repo.get_definition(session, proposed.org, proposed.contract_id)
    if current is None:
        if repo.get_definition_row(session, proposed.contract_id) is not None:
            raise Conflict("This contract id is already used by another organisation.")
        return _create(uow, proposed, now) if proposed.metrics else None
    if proposed.contract_version <= current.contract_version:
        return current
    amended, amendment = amend(current, proposed)
    repo.save_definition(session, amended, now)
    publish(uow, SlaDefinitionUpdated(contract_id=amended.contract_id, org=amended.org,
                                      contract_version=amended.contract_version,
                                      previous_version=current.contract_version, added=list(amendment.added),
                                      removed=list(amendment.removed), changed=list(amendment.changed),
                                      metrics=summaries(amended)))
    for key in amendment.removed:
        _forget_metric(session, amended, key)
    reevaluate(uow, amended, now)
    return amended


def _create(uow: UnitOfWork, definition: SlaDefinition, now: dt.datetime) -> SlaDefinition:
    repo.save_definition(uow.session, definition, now)
    publish(uow, SlaDefinitionCreated(contract_id=definition.contract_id, org=definition.org,
                                      contract_version=definition.contract_version, metrics=summaries(definition)))
    first = min(Period.of_date(definition.effective_date), Period.of(now, definition.timezone))
    open_period(uow, definition, first, now)
    reevaluate(uow, definition, now)
    return definition


def summaries(definition: SlaDefinition) -> list[MetricSummary]:
    return [MetricSummary(key=m.key, kind=m.kind, label=m.terms.label, target=m.terms.target,
                          priority=m.terms.priority, clause_key=m.terms.clause_key,
                          contract_version=m.contract_version) for m in definition.metrics]


def _forget_metric(session: Session, definition: SlaDefinition, key: str) -> None:
    """A metric the amended contract no longer promises: its open windows, clocks and pending timers go."""
    open_periods = _open_periods(session, definition.contract_id)
    cid = definition.contract_id
    session.execute(delete(TicketClockRow).where(TicketClockRow.contract_id == cid, TicketClockRow.metric_key == key,
                                                 TicketClockRow.period.in_(open_periods)))
    session.execute(delete(TimerRow).where(TimerRow.contract_id == cid, TimerRow.metric_key == key,
                                           TimerRow.status == "pending"))
    session.execute(delete(WindowResultRow).where(WindowResultRow.contract_id == cid, WindowResultRow.metric_key == key,
                                                  WindowResultRow.period.in_(open_periods)))


def _open_periods(session: Session, contract_id: str) -> list[str]:
    return list(session.scalars(select(PeriodRow.period).where(PeriodRow.contract_id == contract_id,
                                                               PeriodRow.status == "open")).all())


def reevaluate(uow: UnitOfWork, definition: SlaDefinition, now: dt.datetime) -> None:
    """After the definition changed: recompute every ticket still open or in an open window, and every open window."""
    session = uow.session
    open_periods = set(_open_periods(session, definition.contract_id))
    clocks = session.execute(select(TicketClockRow.ticket_id, TicketClockRow.state, TicketClockRow.period)
                             .where(TicketClockRow.contract_id == definition.contract_id)).all()
    settled = {t for t, state, period in clocks if state == "stopped" and period not in open_periods}
    live = {t for t, state, period in clocks if not (state == "stopped" and period not in open_periods)}
    tickets = set(session.scalars(select(TicketEventRow.ticket_id).distinct()
                                  .where(TicketEventRow.contract_id == definition.contract_id)).all())
    touched: set[WindowKey] = set()
    for ticket_id in sorted((tickets - settled) | live):
        touched |= recompute_ticket(uow, definition, ticket_id, now)
    touched |= {(m.key, p) for m in definition.metrics for p in open_periods}
    touched |= _windows_with_samples(session, definition)
    refresh_windows(uow, definition, touched, now)


def _windows_with_samples(session: Session, definition: SlaDefinition) -> set[WindowKey]:
    """Windows holding samples that arrived before the definition did (they are counted now)."""
    rows = session.execute(select(SampleRow.kind, func.min(SampleRow.start), func.max(SampleRow.start))
                           .where(SampleRow.contract_id == definition.contract_id).group_by(SampleRow.kind)).all()
    touched: set[WindowKey] = set()
    for kind, first, last in rows:
        period, end = Period.of(first, definition.timezone), Period.of(last, definition.timezone).next()
        while period <= end:
            touched |= {(m.key, str(period)) for m in definition.window_metrics() if m.kind in FEEDS[kind]}
            period = period.next()
    return touched


def open_period(uow: UnitOfWork, definition: SlaDefinition, period: Period, now: dt.datetime) -> None:
    tz = definition.timezone
    repo.insert_ignoring_conflicts(uow.session, PeriodRow, [dict(
        id=repo.new_id(), org=definition.org, contract_id=definition.contract_id, period=str(period),
        starts_at=period.starts_at(tz), ends_at=period.ends_at(tz), status="open")])
    refresh_windows(uow, definition, {(m.key, str(period)) for m in definition.metrics}, now)


# --- tickets -----------------------------------------------------------------------------------

def record_ticket_events(uow: UnitOfWork, org: str, events: list[TicketEventRecorded], now: dt.datetime,
                         definitions: dict[str, SlaDefinition]) -> list[str]:
    """Store each event once (by its source id) and recompute the tickets it touches; "accepted" or "duplicate" each."""
    session = uow.session
    seen = _known_sources(session, TicketEventRow, org, [(e.contract_id, e.source_id) for e in events])
    statuses, rows = [], []
    for e in events:
        if (e.contract_id, e.source_id) in seen:
            statuses.append("duplicate")
            continue
        seen.add((e.contract_id, e.source_id))
        statuses.append("accepted")
        rows.append(dict(org=org, contract_id=e.contract_id, ticket_id=e.ticket_id, source_id=e.source_id,
                         kind=e.kind, at=e.at, priority=e.priority, received_at=now))
    repo.insert_ignoring_conflicts(session, TicketEventRow, rows)
    for contract_id in sorted({r["contract_id"] for r in rows}):
        definition = definitions.get(contract_id)
        if definition is None:
            continue   # kept: counted once the contract's definition arrives
        touched: set[WindowKey] = set()
        for ticket_id in sorted({r["ticket_id"] for r in rows if r["contract_id"] == contract_id}):
            touched |= recompute_ticket(uow, definition, ticket_id, now)
        refresh_windows(uow, definition, touched, now)
    return statuses


def _known_sources(session: Session, model, org: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    known: set[tuple[str, str]] = set()
    for contract_id in {c for c, _ in keys}:
        sources = sorted({s for c, s in keys if c == contract_id})
        for chunk in repo.chunks(sources, 500):
            known |= {(contract_id, s) for s in session.scalars(select(model.source_id).where(
                model.org == org, model.contract_id == contract_id, model.source_id.in_(chunk))).all()}
    return known


def recompute_ticket(uow: UnitOfWork, definition: SlaDefinition, ticket_id: str, now: dt.datetime) -> set[WindowKey]:
    """Read the ticket's clocks again from all its events (in their own time order) and re-arm its timers."""
    session = uow.session
    rows = session.scalars(select(TicketEventRow).where(TicketEventRow.contract_id == definition.contract_id,
                                                        TicketEventRow.ticket_id == ticket_id)).all()
    events = [TicketEvent(r.kind, r.at, r.priority, r.id) for r in rows]
    priority = next((e.priority for e in sorted(events, key=TicketEvent.sort_key, reverse=True) if e.priority), None)
    clocks = {c.metric_key: c for c in session.scalars(select(TicketClockRow).where(
        TicketClockRow.contract_id == definition.contract_id, TicketClockRow.ticket_id == ticket_id)).all()}
    touched: set[WindowKey] = set()
    for metric in definition.ticket_metrics(priority):
        row = clocks.pop(metric.key, None)
        if row is not None:
            touched.add((metric.key, row.period))
        touched |= _read_ticket_clock(uow, definition, metric, ticket_id, priority, events, row, now)
    for key, row in clocks.items():   # timers this ticket no longer runs (its priority changed)
        touched.add((key, row.period))
        session.delete(row)
        sync_timers(uow, definition, key, ticket_id, row.period, [], {}, now)
    return touched


def _read_ticket_clock(uow: UnitOfWork, definition: SlaDefinition, metric: MetricDefinition, ticket_id: str,
                       priority: str | None, events: list[TicketEvent], row: TicketClockRow | None,
                       now: dt.datetime) -> set[WindowKey]:
    session, terms = uow.session, metric.terms
    basis = basis_for(terms, definition.service_hours)
    reading = read_clock(events, metric.kind, metric.allowed_time, basis, at_risk_share=terms.at_risk_share,
                         pause_on_customer_wait=terms.pause_on_customer_wait, restart_on_reopen=terms.restart_on_reopen)
    if reading.state == "not_started":
        if row is not None:
            session.delete(row)
            sync_timers(uow, definition, metric.key, ticket_id, row.period, [], {}, now)
        return set()
    period = str(Period.of(reading.opened_at, definition.timezone))
    if row is None:
        row = TicketClockRow(id=repo.new_id(), org=definition.org, contract_id=definition.contract_id,
                             ticket_id=ticket_id, metric_key=metric.key)
        session.add(row)
    row.priority, row.period, row.state, row.cycle = priority, period, reading.state, reading.cycle
    row.opened_at, row.deadline, row.at_risk_at = reading.opened_at, reading.deadline, reading.at_risk_at
    row.breached_at, row.running_since = reading.breached_at, reading.running_since
    row.elapsed_seconds = _seconds(reading.elapsed(basis))
    row.miss, row.updated_at = reading.settled_miss(basis), now
    details = {"ticket_id": ticket_id, "priority": priority,
               "deadline": reading.deadline.isoformat() if reading.deadline else None}
    sync_timers(uow, definition, metric.key, ticket_id, period, reading.timers, details, now)
    return {(metric.key, period)}


def _seconds(delta: dt.timedelta) -> Decimal:
    return Decimal(str(round(delta.total_seconds(), 3)))


def sync_timers(uow: UnitOfWork, definition: SlaDefinition, metric_key: str, subject: str, period: str,
                plans: Iterable[TimerPlan], details: dict, now: dt.datetime) -> None:
    """Make the pending timers of one subject match the plan.

    A fired timer stays fired (each moment is announced once), except a breach that the facts
    no longer support (late input moved or removed the deadline): it is retracted, announced as
    `sla.recovered`, and re-armed if a later deadline still lies ahead.
    """
    session = uow.session
    wanted = {(p.kind, p.cycle): p.due_at for p in plans}
    rows = session.scalars(select(TimerRow).where(TimerRow.contract_id == definition.contract_id,
                                                  TimerRow.metric_key == metric_key, TimerRow.subject == subject)).all()
    for row in rows:
        due = wanted.pop((row.kind, row.cycle), None)
        if row.status == "pending":
            if due is None:
                session.delete(row)
            else:
                row.due_at, row.period, row.details = due, period, details
        elif row.status == "retracted" and due is not None:
            row.status, row.due_at, row.fired_at, row.period, row.details = "pending", due, None, period, details
        elif row.status == "fired" and row.kind == "breach" and (due is None or due > now):
            _announce_recovery(uow, definition, metric_key, row, "breached", "ok")
            if due is None:
                row.status = "retracted"
            else:
                row.status, row.due_at, row.fired_at, row.period, row.details = "pending", due, None, period, details
    for (kind, cycle), due in wanted.items():
        session.add(TimerRow(id=repo.new_id(), org=definition.org, contract_id=definition.contract_id,
                             metric_key=metric_key, subject=subject, kind=kind, cycle=cycle, period=period,
                             due_at=due, status="pending", details=details))
    session.flush()


def _announce_recovery(uow: UnitOfWork, definition: SlaDefinition, metric_key: str, row: TimerRow,
                       previous: str, status: str) -> None:
    metric = definition.metric(metric_key)
    if metric is None:
        return
    publish(uow, SlaRecovered(contract_id=definition.contract_id, org=definition.org, metric_key=metric_key,
                              metric_kind=metric.kind, period=row.period, ticket_id=row.details.get("ticket_id"),
                              priority=row.details.get("priority"), target=metric.terms.target,
                              previous_status=previous, status=status))


# --- samples -----------------------------------------------------------------------------------

def record_samples(uow: UnitOfWork, org: str, samples: list[MetricSampleRecorded], now: dt.datetime,
                   definitions: dict[str, SlaDefinition]) -> list[str]:
    """Store each sample once (by its source id) and refresh the windows it counts in."""
    session = uow.session
    seen = _known_sources(session, SampleRow, org, [(s.contract_id, s.source_id) for s in samples])
    statuses, rows, fresh = [], [], []
    for s in samples:
        if (s.contract_id, s.source_id) in seen:
            statuses.append("duplicate")
            continue
        seen.add((s.contract_id, s.source_id))
        statuses.append("accepted")
        fresh.append(s)
        rows.append(_sample_row(org, s, now))
    repo.insert_ignoring_conflicts(session, SampleRow, rows)
    for contract_id in sorted({s.contract_id for s in fresh}):
        definition = definitions.get(contract_id)
        if definition is None:
            continue   # kept: counted once the contract's definition arrives
        touched: set[WindowKey] = set()
        for s in (s for s in fresh if s.contract_id == contract_id):
            metrics = [m for m in definition.window_metrics()
                       if m.kind in FEEDS[s.kind] and s.metric_key in (None, m.key)]
            touched |= {(m.key, str(p)) for p in windows_touched(s, definition.timezone) for m in metrics}
        refresh_windows(uow, definition, touched, now)
    return statuses


def _sample_row(org: str, s: MetricSampleRecorded, now: dt.datetime) -> dict:
    single_score = s.kind == "survey" and s.score is not None
    return dict(org=org, contract_id=s.contract_id, source_id=s.source_id, kind=s.kind, metric_key=s.metric_key,
                start=s.start or s.at, end=s.end, state=s.state, offered=s.offered or 0,
                answered_within_threshold=s.answered_within_threshold or 0, abandoned=s.abandoned or 0,
                responses=1 if single_score else (s.responses or 0),
                score_sum=s.score if single_score else (s.score_sum or 0),
                contacts=s.contacts or 0, resolved_first_contact=s.resolved_first_contact or 0,
                report_period=s.report_period, received_at=now)


# --- windows -----------------------------------------------------------------------------------

def refresh_windows(uow: UnitOfWork, definition: SlaDefinition, keys: Iterable[WindowKey], now: dt.datetime) -> None:
    for key, period in sorted(set(keys)):
        metric = definition.metric(key)
        if metric is not None:
            refresh_window(uow, definition, metric, Period.parse(period), now)


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
        _arm_report_timer(uow, definition, metric, period, now)
    elif metric.kind not in TIMER_DRIVEN:
        _announce_change(uow, definition, metric, period, previous, outcome, now)
    session.flush()
    return outcome


def _announce_change(uow: UnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                     previous: str, outcome: WindowOutcome, now: dt.datetime) -> None:
    before, after = _RANK[previous], _RANK[outcome.status]
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
        return compliance.ticket_window(_standings(session, definition, metric, period, now))
    if kind == "report_delivery":
        if not _report_owed(definition, period):
            return compliance.NO_DATA
        due, delivered = report_deadline(definition, metric, period), _report_delivered_at(session, definition, metric, period)
        return _report_outcome(definition, metric, period, due, delivered, now)
    if kind == "availability":
        rows = session.execute(select(SampleRow.start, SampleRow.end, SampleRow.state).where(
            *_samples_of(definition, metric, "availability"), SampleRow.start < end, SampleRow.end > start)).all()
        down = [(s, e) for s, e, state in rows if state == "down"]
        planned = [(s, e) for s, e, state in rows if state == "maintenance"]
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


def _standings(session: Session, definition: SlaDefinition, metric: MetricDefinition, period: Period,
               now: dt.datetime) -> list:
    basis = basis_for(metric.terms, definition.service_hours)
    rows = session.scalars(select(TicketClockRow).where(TicketClockRow.contract_id == definition.contract_id,
                                                        TicketClockRow.metric_key == metric.key,
                                                        TicketClockRow.period == str(period))).all()
    return [ticket_standing(state=r.state, elapsed=dt.timedelta(seconds=float(r.elapsed_seconds)),
                            running_since=r.running_since, at_risk_at=r.at_risk_at, breached_at=r.breached_at,
                            settled_miss=r.miss, allowed=metric.allowed_time, basis=basis, now=now) for r in rows]


def calendar_of(definition: SlaDefinition) -> BusinessCalendar:
    return BusinessCalendar.from_service_hours(definition.service_hours)


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


def _arm_report_timer(uow: UnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                      now: dt.datetime) -> None:
    due = report_deadline(definition, metric, period)
    delivered = _report_delivered_at(uow.session, definition, metric, period)
    owed = _report_owed(definition, period) and not (delivered is not None and delivered < due)
    plans = [TimerPlan("breach", 1, due)] if owed else []
    sync_timers(uow, definition, metric.key, str(period), str(period), plans,
                {"report_period": str(period.previous()), "deadline": due.isoformat()}, now)


# --- scheduled work ----------------------------------------------------------------------------

def fire_due_timers(uow_factory: Callable[[], UnitOfWork], now: dt.datetime, batch: int = 500
                    ) -> tuple[int, dt.datetime | None]:
    """Announce every timer whose instant has come, each once whatever the number of replicas."""
    with uow_factory() as uow:
        due = uow.session.execute(select(TimerRow.id, TimerRow.due_at, TimerRow.org, TimerRow.contract_id)
                                  .where(TimerRow.status == "pending", TimerRow.due_at <= now)
                                  .order_by(TimerRow.due_at).limit(batch)).all()
    fired = 0
    for timer_id, due_at, org, contract_id in due:
        with uow_factory() as uow:
            session = uow.session
            if not claim(session, TimerRow.__table__, timer_id, expect_status="pending", expect_due_at=due_at,
                         status="fired", fired_at=now):
                continue   # another replica fired it, or new input moved it
            row = session.get(TimerRow, timer_id)
            definition = repo.get_definition(session, org, contract_id)
            metric = definition.metric(row.metric_key) if definition else None
            if metric is not None:
                publish(uow, _timer_event(definition, metric, row, now))
                refresh_window(uow, definition, metric, Period.parse(row.period), now)
            uow.commit()
            fired += 1
    with uow_factory() as uow:
        next_due = uow.session.scalar(select(func.min(TimerRow.due_at)).where(TimerRow.status == "pending"))
    return fired, next_due


def _timer_event(definition: SlaDefinition, metric: MetricDefinition, row: TimerRow, now: dt.datetime):
    details, terms = row.details or {}, metric.terms
    common = dict(contract_id=definition.contract_id, org=definition.org, metric_key=metric.key,
                  metric_kind=metric.kind, period=row.period, ticket_id=details.get("ticket_id"),
                  priority=details.get("priority"), target=terms.target)
    if row.kind == "breach":
        return SlaBreached(breached_at=row.due_at, detected_at=now, **common)
    deadline = details.get("deadline")
    return SlaAtRisk(at=row.due_at, deadline=dt.datetime.fromisoformat(deadline) if deadline else None,
                     actual=(terms.target * terms.at_risk_share).normalize(), **common)


def close_due_periods(uow_factory: Callable[[], UnitOfWork], now: dt.datetime, batch: int = 100
                      ) -> tuple[int, dt.datetime | None]:
    """Close every month that has ended: final compliance, `sla.period_closed`, and the credit it earns."""
    with uow_factory() as uow:
        due = uow.session.execute(select(PeriodRow.id, PeriodRow.org, PeriodRow.contract_id)
                                  .where(PeriodRow.status == "open", PeriodRow.ends_at <= now)
                                  .order_by(PeriodRow.ends_at).limit(batch)).all()
    closed = 0
    for period_id, org, contract_id in due:
        with uow_factory() as uow:
            if not claim(uow.session, PeriodRow.__table__, period_id, expect_status="open", status="closed",
                         closed_at=now):
                continue
            definition = repo.get_definition(uow.session, org, contract_id)
            if definition is not None:
                close_period(uow, definition, uow.session.get(PeriodRow, period_id), now)
            uow.commit()
            closed += 1
    with uow_factory() as uow:
        next_due = uow.session.scalar(select(func.min(PeriodRow.ends_at)).where(PeriodRow.status == "open"))
    return closed, next_due


def close_period(uow: UnitOfWork, definition: SlaDefinition, row: PeriodRow, now: dt.datetime) -> None:
    period = Period.parse(row.period)
    outcomes = [(m, refresh_window(uow, definition, m, period, now, closing=True)) for m in definition.metrics]
    publish(uow, SlaPeriodClosed(contract_id=definition.contract_id, org=definition.org, period=row.period,
                                 contract_version=definition.contract_version, starts_at=row.starts_at,
                                 ends_at=row.ends_at, metrics=[compliance_of(m, o) for m, o in outcomes]))
    assessment = credits.assess(outcomes, definition.monthly_fee, definition.credit_cap_share)
    if assessment.amount > 0:
        row.credit_id, row.credit_amount = repo.new_id(), assessment.amount
        row.credit_detail = {"share": str(assessment.share), "capped": assessment.capped,
                             "lines": [{"metric_key": l.metric_key, "share": str(l.share), "breaches": l.breaches}
                                       for l in assessment.lines]}
        publish(uow, SlaCreditAssessed(contract_id=definition.contract_id, org=definition.org, period=row.period,
                                       amount=assessment.amount, currency=definition.currency,
                                       metric_keys=assessment.metric_keys, credit_id=row.credit_id))
    following = period.next()
    if following.first_day() <= definition.end_date and definition.metrics:
        open_period(uow, definition, following, now)


def compliance_of(metric: MetricDefinition, outcome: WindowOutcome) -> MetricCompliance:
    return MetricCompliance(key=metric.key, kind=metric.kind, label=metric.terms.label, target=metric.terms.target,
                            actual=outcome.actual, met=outcome.met, status=outcome.status, items=outcome.items,
                            breaches=outcome.breaches, clause_key=metric.terms.clause_key,
                            contract_version=metric.contract_version)
