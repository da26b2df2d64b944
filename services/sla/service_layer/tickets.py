"""Tickets: their events stored once, their clocks read again from all of them, their timers re-armed."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Iterable

from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.periods import Period
from services.sla.domain.samples import new_by_source
from services.sla.domain.ticket_clock import TicketEvent, read_clock
from services.sla.domain.time_basis import basis_for
from services.sla.domain.timers import Timer
from services.sla.service_layer.timers import sync_timers
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from services.sla.service_layer.windows import WindowKey, refresh_windows
from shared.events.sla import TicketEventRecorded


def record_ticket_events(uow: SlaUnitOfWork, org: str, events: list[TicketEventRecorded], now: dt.datetime,
                         definitions: dict[str, SlaDefinition] | None = None) -> list[str]:
    """Store each event once (by its source id) and recompute the tickets it touches; "accepted" or "duplicate"
    each. Events of a contract without a definition yet are kept and counted once it arrives."""
    with uow:
        if definitions is None:
            definitions = uow.definitions.get_many(org, [e.contract_id for e in events])
        seen = uow.tickets.known_sources(org, [(e.contract_id, e.source_id) for e in events])
        statuses, fresh = new_by_source(events, seen)
        uow.tickets.add_events(org, fresh, now)
        for contract_id in sorted({e.contract_id for e in fresh}):
            definition = definitions.get(contract_id)
            if definition is None:
                continue   # kept: counted once the contract's definition arrives
            tickets = {e.ticket_id for e in fresh if e.contract_id == contract_id}
            refresh_windows(uow, definition, recompute_tickets(uow, definition, tickets, now), now)
        uow.commit()
    return statuses


def recompute_tickets(uow: SlaUnitOfWork, definition: SlaDefinition, ticket_ids: Iterable[str],
                      now: dt.datetime) -> set[WindowKey]:
    """Read each ticket's clocks again from all its events (in their own time order) and re-arm its timers."""
    touched: set[WindowKey] = set()
    ids = sorted(set(ticket_ids))
    timer_metrics = [m.key for m in definition.metrics if m.is_ticket_timer]
    for chunk in _chunks(ids, 400):
        events, clocks, timers = uow.tickets.load(definition.org, definition.contract_id, chunk, timer_metrics)
        for ticket_id in chunk:
            touched |= _recompute_ticket(uow, definition, ticket_id, events.get(ticket_id, []),
                                         clocks.get(ticket_id, {}), timers, now)
    uow.flush()
    return touched


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _recompute_ticket(uow: SlaUnitOfWork, definition: SlaDefinition, ticket_id: str, events: list[TicketEvent],
                      clocks: dict, timers: dict, now: dt.datetime) -> set[WindowKey]:
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
        uow.tickets.delete_clock(row)
        sync_timers(uow, definition, key, ticket_id, row.period, [], {}, now, timers.get((key, ticket_id), []))
    return touched


def _read_ticket_clock(uow: SlaUnitOfWork, definition: SlaDefinition, metric: MetricDefinition, ticket_id: str,
                       priority: str | None, events: list[TicketEvent], row,
                       timers: list[Timer], now: dt.datetime) -> set[WindowKey]:
    terms = metric.terms
    basis = basis_for(terms, definition.service_hours)
    reading = read_clock(events, metric.kind, metric.allowed_time, basis, at_risk_share=terms.at_risk_share,
                         pause_on_customer_wait=terms.pause_on_customer_wait, restart_on_reopen=terms.restart_on_reopen)
    if reading.state == "not_started":
        if row is not None:
            uow.tickets.delete_clock(row)
            sync_timers(uow, definition, metric.key, ticket_id, row.period, [], {}, now, timers)
        return set()
    period = str(Period.of(reading.opened_at, definition.timezone))
    uow.tickets.save_clock(row, org=definition.org, contract_id=definition.contract_id, ticket_id=ticket_id,
                           metric_key=metric.key, priority=priority, period=period, state=reading.state,
                           cycle=reading.cycle, opened_at=reading.opened_at, deadline=reading.deadline,
                           at_risk_at=reading.at_risk_at, breached_at=reading.breached_at,
                           running_since=reading.running_since, elapsed_seconds=_seconds(reading.elapsed(basis)),
                           miss=reading.settled_miss(basis), updated_at=now)
    details = {"ticket_id": ticket_id, "priority": priority,
               "deadline": reading.deadline.isoformat() if reading.deadline else None}
    sync_timers(uow, definition, metric.key, ticket_id, period, reading.timers, details, now, timers)
    return {(metric.key, period)}


def _seconds(delta: dt.timedelta) -> Decimal:
    return Decimal(str(round(delta.total_seconds(), 3)))
