"""Work that time itself sets off: timers coming due and months ending."""
from __future__ import annotations

import datetime as dt
from typing import Callable

from sqlalchemy import func, select

from services.sla.adapters import repository as repo
from services.sla.adapters.stream import publish
from services.sla.adapters.tables import PeriodRow, TimerRow
from services.sla.domain import credits
from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.periods import Period
from services.sla.service_layer.definitions import open_period
from services.sla.service_layer.windows import refresh_window, refresh_windows
from shared.events.sla import MetricCompliance, SlaAtRisk, SlaBreached, SlaCreditAssessed, SlaPeriodClosed
from shared.scheduler import claim
from shared.uow import UnitOfWork

LOOK_AGAIN = dt.timedelta(seconds=0.5)   # announcements are promised within 1 s of their moment


def fire_due_timers(uow_factory: Callable[[], UnitOfWork], now: dt.datetime, batch: int = 500
                    ) -> tuple[int, dt.datetime | None]:
    """Announce every timer whose instant has come, each once whatever the number of replicas.

    Each timer is claimed and announced in a transaction of its own; the windows they touch are
    measured again once afterwards (a window's standing is derived, so a crash in between only
    delays it until the next input or timer).
    """
    with uow_factory() as uow:
        due = uow.session.execute(select(TimerRow.id, TimerRow.due_at)
                                  .where(TimerRow.status == "pending", TimerRow.due_at <= now)
                                  .order_by(TimerRow.due_at).limit(batch)).all()
    fired, touched = 0, set()
    for timer_id, due_at in due:
        with uow_factory() as uow:
            session = uow.session
            if not claim(session, TimerRow.__table__, timer_id, expect_status="pending", expect_due_at=due_at,
                         status="fired", fired_at=now):
                continue   # another replica fired it, or new input moved it
            row = session.get(TimerRow, timer_id)
            definition = repo.get_definition(session, row.org, row.contract_id)
            metric = definition.metric(row.metric_key) if definition else None
            if metric is not None:
                publish(uow, _timer_event(definition, metric, row, now))
                touched.add((row.org, row.contract_id, row.metric_key, row.period))
            uow.commit()
            fired += 1
    for org, contract_id, key, period in sorted(touched):
        with uow_factory() as uow:
            definition = repo.get_definition(uow.session, org, contract_id)
            if definition is not None:
                refresh_windows(uow, definition, [(key, period)], now)
                uow.commit()
    with uow_factory() as uow:
        next_due = uow.session.scalar(select(func.min(TimerRow.due_at)).where(TimerRow.status == "pending"))
    # Another replica may arm an earlier timer at any moment: look again soon, whatever the tick interval.
    return fired, min(next_due, now + LOOK_AGAIN) if next_due else now + LOOK_AGAIN


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
