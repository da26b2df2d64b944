"""Timers: instants at which `sla.at_risk` or `sla.breached` is due, kept in step with the facts."""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from services.sla.domain.definitions import SlaDefinition
from services.sla.domain.ticket_clock import TimerPlan
from services.sla.domain.timers import Timer, reconcile
from services.sla.service_layer.unit_of_work import SlaUnitOfWork


def sync_timers(uow: SlaUnitOfWork, definition: SlaDefinition, metric_key: str, subject: str, period: str,
                plans: Iterable[TimerPlan], details: dict, now: dt.datetime,
                timers: list[Timer] | None = None, retract_breaches: bool = True) -> None:
    """Make the timers of one subject match the plan (`domain.timers.reconcile`) and store them; a breach
    retracted on the way records `sla.recovered`, collected with the timer."""
    if timers is None:
        timers = uow.timers.of_subject(definition.org, definition.contract_id, metric_key, subject)
    result = reconcile(definition, metric_key, subject, period, timers, plans, details, now, retract_breaches)
    for timer in result.dropped:
        uow.timers.delete(timer)
    for timer in result.kept:
        uow.timers.save(timer)
        uow.collect(timer)
    for timer in result.added:
        uow.timers.add(timer)
