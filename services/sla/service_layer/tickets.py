"""Tickets: their events stored once, their clocks read again from all of them, their timers re-armed."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.sla.adapters import repository as repo
from services.sla.adapters.tables import TicketClockRow, TicketEventRow, TimerRow
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.periods import Period
from services.sla.domain.ticket_clock import TicketEvent, read_clock
from services.sla.domain.time_basis import basis_for
from services.sla.service_layer.timers import sync_timers
from services.sla.service_layer.windows import WindowKey, refresh_windows
from shared.events.sla import TicketEventRecorded
from shared.uow import UnitOfWork


def record_ticket_events(uow: UnitOfWork, org: str, events: list[TicketEventRecorded], now: dt.datetime,
                         definitions: dict[str, SlaDefinition]) -> list[str]:
    """Store each event once (by its source id) and recompute the tickets it touches; "accepted" or "duplicate" each."""
    session = uow.session
    seen = repo.known_sources(session, TicketEventRow, org, [(e.contract_id, e.source_id) for e in events])
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
        tickets = {r["ticket_id"] for r in rows if r["contract_id"] == contract_id}
        refresh_windows(uow, definition, recompute_tickets(uow, definition, tickets, now), now)
    return statuses


def recompute_tickets(uow: UnitOfWork, definition: SlaDefinition, ticket_ids: Iterable[str],
                      now: dt.datetime) -> set[WindowKey]:
    """Read each ticket's clocks again from all its events (in their own time order) and re-arm its timers."""
    touched: set[WindowKey] = set()
    ids = sorted(set(ticket_ids))
    for chunk in repo.chunks(ids, 400):
        events, clocks, timers = _load_tickets(uow.session, definition, chunk)
        for ticket_id in chunk:
            touched |= _recompute_ticket(uow, definition, ticket_id, events.get(ticket_id, []),
                                         clocks.get(ticket_id, {}), timers, now)
    uow.session.flush()
    return touched


def _load_tickets(session: Session, definition: SlaDefinition, ticket_ids: Sequence[str]):
    """Events, clocks and timers of many tickets in three queries (a batch may hold thousands)."""
    contract_id = definition.contract_id
    timer_metrics = [m.key for m in definition.metrics if m.is_ticket_timer]
    events: dict[str, list[TicketEvent]] = defaultdict(list)
    for r in session.scalars(select(TicketEventRow).where(TicketEventRow.contract_id == contract_id,
                                                          TicketEventRow.ticket_id.in_(ticket_ids))):
        events[r.ticket_id].append(TicketEvent(r.kind, r.at, r.priority, r.id))
    clocks: dict[str, dict[str, TicketClockRow]] = defaultdict(dict)
    for c in session.scalars(select(TicketClockRow).where(TicketClockRow.contract_id == contract_id,
                                                          TicketClockRow.ticket_id.in_(ticket_ids))):
        clocks[c.ticket_id][c.metric_key] = c
    timers: dict[tuple[str, str], list[TimerRow]] = defaultdict(list)
    for t in session.scalars(select(TimerRow).where(TimerRow.contract_id == contract_id,
                                                    TimerRow.metric_key.in_(timer_metrics),
                                                    TimerRow.subject.in_(ticket_ids))):
        timers[(t.metric_key, t.subject)].append(t)
    return events, clocks, timers


def _recompute_ticket(uow: UnitOfWork, definition: SlaDefinition, ticket_id: str, events: list[TicketEvent],
                      clocks: dict[str, TicketClockRow], timers: dict, now: dt.datetime) -> set[WindowKey]:
    priority = next((e.priority for e in sorted(events, key=TicketEvent.sort_key, reverse=True) if e.priority), None)
    clocks = dict(clocks)
    touched: set[WindowKey] = set()
    for metric in definition.ticket_metrics(priority):
        row = clocks.pop(metric.key, None)
        if row is not None:
            touched.add((metric.key, row.period))
        touched |= _read_ticket_clock(uow, definition, metric, ticket_id, priority, events, row,
                                      timers.get((metric.key, ticket_id), []), now)
    for key, row in clocks.items():   # timers this ticket no longer runs (its priority changed)
        touched.add((key, row.period))
        uow.session.delete(row)
        sync_timers(uow, definition, key, ticket_id, row.period, [], {}, now, timers.get((key, ticket_id), []))
    return touched


def _read_ticket_clock(uow: UnitOfWork, definition: SlaDefinition, metric: MetricDefinition, ticket_id: str,
                       priority: str | None, events: list[TicketEvent], row: TicketClockRow | None,
                       timers: list[TimerRow], now: dt.datetime) -> set[WindowKey]:
    session, terms = uow.session, metric.terms
    basis = basis_for(terms, definition.service_hours)
    reading = read_clock(events, metric.kind, metric.allowed_time, basis, at_risk_share=terms.at_risk_share,
                         pause_on_customer_wait=terms.pause_on_customer_wait, restart_on_reopen=terms.restart_on_reopen)
    if reading.state == "not_started":
        if row is not None:
            session.delete(row)
            sync_timers(uow, definition, metric.key, ticket_id, row.period, [], {}, now, timers)
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
    sync_timers(uow, definition, metric.key, ticket_id, period, reading.timers, details, now, timers)
    return {(metric.key, period)}


def _seconds(delta: dt.timedelta) -> Decimal:
    return Decimal(str(round(delta.total_seconds(), 3)))
