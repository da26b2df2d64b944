"""Timers: instants at which `sla.at_risk` or `sla.breached` is due even if no input arrives.

The aggregate behind `sla_timers`. A fired timer records its announcement; a fired breach the facts
no longer support is retracted and records `sla.recovered`. `reconcile` keeps one subject's timers
in step with the plan the ticket clock or the window made.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable

from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.ticket_clock import TimerPlan
from shared.events.sla import SlaAtRisk, SlaBreached, SlaRecovered
from shared.ids import new_id


@dataclass
class Timer:
    id: str
    org: str
    contract_id: str
    metric_key: str
    subject: str               # the ticket id, or the period for a window deadline
    kind: str                  # at_risk | breach
    cycle: int
    period: str
    due_at: dt.datetime
    status: str = "pending"    # pending | fired | retracted
    fired_at: dt.datetime | None = None
    details: dict = field(default_factory=dict)
    events: list = field(default_factory=list, repr=False, compare=False)

    def rearm(self, due: dt.datetime, period: str, details: dict) -> None:
        self.status, self.due_at, self.fired_at, self.period, self.details = "pending", due, None, period, details

    def fire(self, definition: SlaDefinition, metric: MetricDefinition, now: dt.datetime) -> None:
        """Record what its instant says (the job has claimed it: pending → fired)."""
        details, terms = self.details or {}, metric.terms
        actual = (details.get("actual") or {}).get(self.kind)    # a window metric's standing at the instant
        common = dict(contract_id=definition.contract_id, org=definition.org, metric_key=metric.key,
                      metric_kind=metric.kind, period=self.period, ticket_id=details.get("ticket_id"),
                      priority=details.get("priority"), target=terms.target)
        if self.kind == "breach":
            self.events.append(SlaBreached(breached_at=self.due_at, detected_at=now, actual=actual, **common))
            return
        deadline = details.get("deadline")
        self.events.append(SlaAtRisk(at=self.due_at, deadline=dt.datetime.fromisoformat(deadline) if deadline else None,
                                     actual=actual or (terms.target * terms.at_risk_share).normalize(), **common))

    def announced_status(self) -> str:
        return "breached" if self.kind == "breach" else "at_risk"

    def _recovered(self, definition: SlaDefinition) -> None:
        metric = definition.metric(self.metric_key)
        if metric is None:
            return
        self.events.append(SlaRecovered(
            contract_id=definition.contract_id, org=definition.org, metric_key=self.metric_key,
            metric_kind=metric.kind, period=self.period, ticket_id=self.details.get("ticket_id"),
            priority=self.details.get("priority"), target=metric.terms.target, previous_status="breached",
            status="ok"))


@dataclass
class Reconciled:
    kept: list[Timer]          # changed or not: saved
    added: list[Timer]
    dropped: list[Timer]


def reconcile(definition: SlaDefinition, metric_key: str, subject: str, period: str, timers: Iterable[Timer],
              plans: Iterable[TimerPlan], details: dict, now: dt.datetime, retract_breaches: bool = True) -> Reconciled:
    """Make the pending timers of one subject match the plan.

    A fired timer stays fired (each moment is announced once), except a breach that the facts
    no longer support (late input moved or removed the deadline): it is retracted, announced as
    `sla.recovered`, and re-armed if a later deadline still lies ahead. Without `retract_breaches`
    (a window metric announces its own recoveries) a fired timer is only re-armed for a moment
    still ahead.
    """
    wanted = {(p.kind, p.cycle): p.due_at for p in plans}
    kept, dropped = [], []
    for timer in timers:
        due = wanted.pop((timer.kind, timer.cycle), None)
        if timer.status == "pending":
            if due is None:
                dropped.append(timer)
                continue
            timer.due_at, timer.period, timer.details = due, period, details
        elif timer.status == "retracted" and due is not None:
            timer.rearm(due, period, details)
        elif timer.status == "fired" and timer.kind == "breach" and retract_breaches and (due is None or due > now):
            timer._recovered(definition)
            if due is None:
                timer.status = "retracted"
            else:
                timer.rearm(due, period, details)
        elif timer.status == "fired" and not retract_breaches and due is not None and due > now:
            timer.rearm(due, period, details)
        kept.append(timer)
    added = [Timer(id=new_id(), org=definition.org, contract_id=definition.contract_id, metric_key=metric_key,
                   subject=subject, kind=kind, cycle=cycle, period=period, due_at=due, details=details)
             for (kind, cycle), due in wanted.items()]
    return Reconciled(kept, added, dropped)
