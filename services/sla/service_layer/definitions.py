"""Definitions: created from a contract's terms, amended by later versions; months opened."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.sla.adapters import repository as repo
from services.sla.adapters.stream import publish
from services.sla.adapters.tables import PeriodRow, SampleRow, TicketClockRow, TicketEventRow, TimerRow, WindowResultRow
from services.sla.domain.definitions import SlaDefinition, amend, definition_from_terms
from services.sla.domain.periods import Period
from services.sla.domain.samples import FEEDS
from services.sla.service_layer.tickets import recompute_tickets
from services.sla.service_layer.windows import WindowKey, refresh_windows
from shared.errors import Conflict
from shared.events.contracts import ContractTerms
from shared.events.sla import MetricSummary, SlaDefinitionCreated, SlaDefinitionUpdated
from shared.uow import UnitOfWork


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
    touched = recompute_tickets(uow, definition, (tickets - settled) | live, now)
    touched |= {(m.key, p) for m in definition.metrics for p in open_periods}
    touched |= _windows_with_samples(session, definition)
    # A month already closed keeps the terms it was closed under: amended terms do not reassess its credit.
    closed = set(session.scalars(select(PeriodRow.period).where(PeriodRow.contract_id == definition.contract_id,
                                                                PeriodRow.status == "closed")).all())
    refresh_windows(uow, definition, {(key, period) for key, period in touched if period not in closed}, now)


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
