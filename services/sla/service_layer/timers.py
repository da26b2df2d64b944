"""Timers: instants at which `sla.at_risk` or `sla.breached` is due, kept in step with the facts."""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from services.sla.domain.definitions import SlaDefinition
from services.sla.domain.ticket_clock import TimerPlan
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from shared.events.sla import SlaRecovered


def sync_timers(uow: SlaUnitOfWork, definition: SlaDefinition, metric_key: str, subject: str, period: str,
                plans: Iterable[TimerPlan], details: dict, now: dt.datetime,
                rows: list | None = None, retract_breaches: bool = True) -> None:
    """Make the pending timers of one subject match the plan.

    A fired timer stays fired (each moment is announced once), except a breach that the facts
    no longer support (late input moved or removed the deadline): it is retracted, announced as
    `sla.recovered`, and re-armed if a later deadline still lies ahead. Without `retract_breaches`
    (a window metric announces its own recoveries) a fired timer is only re-armed for a moment
    still ahead.
    """
    wanted = {(p.kind, p.cycle): p.due_at for p in plans}
    if rows is None:
        rows = uow.timers.of_subject(definition.contract_id, metric_key, subject)
    for row in rows:
        due = wanted.pop((row.kind, row.cycle), None)
        if row.status == "pending":
            if due is None:
                uow.timers.delete(row)
            else:
                row.due_at, row.period, row.details = due, period, details
        elif row.status == "retracted" and due is not None:
            _rearm(row, due, period, details)
        elif row.status == "fired" and row.kind == "breach" and retract_breaches and (due is None or due > now):
            _announce_recovery(uow, definition, metric_key, row, "breached", "ok")
            if due is None:
                row.status = "retracted"
            else:
                _rearm(row, due, period, details)
        elif row.status == "fired" and not retract_breaches and due is not None and due > now:
            _rearm(row, due, period, details)
    for (kind, cycle), due in wanted.items():
        uow.timers.add(org=definition.org, contract_id=definition.contract_id, metric_key=metric_key,
                       subject=subject, kind=kind, cycle=cycle, period=period, due_at=due, details=details)


def _rearm(row, due: dt.datetime, period: str, details: dict) -> None:
    row.status, row.due_at, row.fired_at, row.period, row.details = "pending", due, None, period, details


def _announce_recovery(uow: SlaUnitOfWork, definition: SlaDefinition, metric_key: str, row,
                       previous: str, status: str) -> None:
    # A timer is a stored row, not a domain aggregate: its retraction is emitted here.
    metric = definition.metric(metric_key)
    if metric is None:
        return
    uow.emit(SlaRecovered(contract_id=definition.contract_id, org=definition.org, metric_key=metric_key,
                          metric_kind=metric.kind, period=row.period, ticket_id=row.details.get("ticket_id"),
                          priority=row.details.get("priority"), target=metric.terms.target,
                          previous_status=previous, status=status))
