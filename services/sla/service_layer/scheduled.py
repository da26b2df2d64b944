"""Work that time itself sets off: timers coming due and months ending.

The jobs are use cases like the others, given a unit-of-work factory: each claims and acts on one
row in a unit of its own (`with uow: ... uow.commit()`), so one failure leaves the rest done.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.periods import Period
from services.sla.service_layer.closing import announce_close
from services.sla.service_layer.definitions import open_period
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from services.sla.service_layer.windows import STANDING_RANK, refresh_window, refresh_windows
from shared.events.sla import SlaAtRisk, SlaBreached

LOOK_AGAIN = dt.timedelta(seconds=0.5)   # announcements are promised within 1 s of their moment
UowFactory = Callable[[], SlaUnitOfWork]


def fire_due_timers(uow_factory: UowFactory, now: dt.datetime, batch: int = 500) -> tuple[int, dt.datetime | None]:
    """Announce every timer whose instant has come, each once whatever the number of replicas.

    Each timer is claimed and announced in a transaction of its own; the windows they touch are
    measured again once afterwards (a window's standing is derived, so a crash in between only
    delays it until the next input or timer).
    """
    with uow_factory() as uow:
        due = uow.timers.due(now, batch)
    fired, touched = 0, set()
    for timer_id, due_at in due:
        window = _fire_timer(uow_factory(), timer_id, due_at, now)
        if window is False:
            continue   # another replica fired it, or new input moved it
        fired += 1
        if window is not None:
            touched.add(window)
    for org, contract_id, key, period in sorted(touched):
        _remeasure(uow_factory(), org, contract_id, key, period, now)
    with uow_factory() as uow:
        next_due = uow.timers.next_due()
    # Another replica may arm an earlier timer at any moment: look again soon, whatever the tick interval.
    return fired, min(next_due, now + LOOK_AGAIN) if next_due else now + LOOK_AGAIN


def _fire_timer(uow: SlaUnitOfWork, timer_id: str, due_at: dt.datetime, now: dt.datetime):
    """Claim one timer and announce it: the window it speaks for, None if its metric is gone, False if not claimed."""
    with uow:
        row = uow.timers.claim(timer_id, due_at, now)
        if row is None:
            return False
        definition = uow.definitions.get(row.org, row.contract_id)
        metric = definition.metric(row.metric_key) if definition else None
        window = None
        if metric is not None:
            # A timer is a stored row, not a domain aggregate: its announcement is emitted here.
            uow.emit(timer_event(definition, metric, row, now))
            _note_announced(uow, row)
            window = (row.org, row.contract_id, row.metric_key, row.period)
        uow.commit()
    return window


def _remeasure(uow: SlaUnitOfWork, org: str, contract_id: str, key: str, period: str, now: dt.datetime) -> None:
    with uow:
        definition = uow.definitions.get(org, contract_id)
        if definition is not None:
            refresh_windows(uow, definition, [(key, period)], now)
            uow.commit()


def timer_event(definition: SlaDefinition, metric: MetricDefinition, row, now: dt.datetime):
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


def _note_announced(uow: SlaUnitOfWork, timer) -> None:
    """The window already stands where the timer said, so measuring it next does not announce it again."""
    status = "breached" if timer.kind == "breach" else "at_risk"
    lower = [s for s, rank in STANDING_RANK.items() if rank < STANDING_RANK[status]]
    uow.windows.raise_status(timer.contract_id, timer.metric_key, timer.period, status, lower)


def close_due_periods(uow_factory: UowFactory, now: dt.datetime, batch: int = 100) -> tuple[int, dt.datetime | None]:
    """Close every month that has ended: final compliance, `sla.period_closed`, and the credit it earns."""
    with uow_factory() as uow:
        due = uow.periods.due(now, batch)
    closed = 0
    for period_id, org, contract_id in due:
        closed += _close_one(uow_factory(), period_id, org, contract_id, now)
    with uow_factory() as uow:
        next_due = uow.periods.next_due()
    return closed, next_due


def _close_one(uow: SlaUnitOfWork, period_id: str, org: str, contract_id: str, now: dt.datetime) -> int:
    with uow:
        row = uow.periods.claim(period_id, now)
        if row is None:
            return 0   # another replica closed it
        definition = uow.definitions.get(org, contract_id)
        if definition is not None:
            close_period(uow, definition, row, now)
        uow.commit()
    return 1


def close_period(uow: SlaUnitOfWork, definition: SlaDefinition, row, now: dt.datetime) -> None:
    period = Period.parse(row.period)
    outcomes = [(m, refresh_window(uow, definition, m, period, now, closing=True)) for m in definition.metrics]
    announce_close(uow, definition, row, outcomes, now)
    following = period.next()
    if following.first_day() <= definition.end_date and definition.metrics:
        open_period(uow, definition, following, now)
