"""Work that time itself sets off: timers coming due and months ending."""
from __future__ import annotations

import datetime as dt
from typing import Callable

from sqlalchemy import func, select, update

from services.sla.adapters import repository as repo
from services.sla.adapters.stream import publish
from services.sla.adapters.tables import PeriodRow, TimerRow, WindowResultRow
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.periods import Period
from services.sla.service_layer.closing import announce_close
from services.sla.service_layer.definitions import open_period
from services.sla.service_layer.windows import STANDING_RANK, refresh_window, refresh_windows
from shared.events.sla import SlaAtRisk, SlaBreached
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
                _note_announced(uow, row)
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
    actual = (details.get("actual") or {}).get(row.kind)    # a window metric's standing at the instant
    common = dict(contract_id=definition.contract_id, org=definition.org, metric_key=metric.key,
                  metric_kind=metric.kind, period=row.period, ticket_id=details.get("ticket_id"),
                  priority=details.get("priority"), target=terms.target)
    if row.kind == "breach":
        return SlaBreached(breached_at=row.due_at, detected_at=now, actual=actual, **common)
    deadline = details.get("deadline")
    return SlaAtRisk(at=row.due_at, deadline=dt.datetime.fromisoformat(deadline) if deadline else None,
                     actual=actual or (terms.target * terms.at_risk_share).normalize(), **common)


def _note_announced(uow: UnitOfWork, timer: TimerRow) -> None:
    """The window already stands where the timer said, so measuring it next does not announce it again."""
    status = "breached" if timer.kind == "breach" else "at_risk"
    lower = [s for s, rank in STANDING_RANK.items() if rank < STANDING_RANK[status]]
    uow.session.execute(update(WindowResultRow).where(
        WindowResultRow.contract_id == timer.contract_id, WindowResultRow.metric_key == timer.metric_key,
        WindowResultRow.period == timer.period, WindowResultRow.status.in_(lower)).values(status=status))


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
    announce_close(uow, definition, row, outcomes, now)
    following = period.next()
    if following.first_day() <= definition.end_date and definition.metrics:
        open_period(uow, definition, following, now)
