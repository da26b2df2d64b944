"""Work that time itself sets off: timers coming due and months ending.

The jobs are use cases like the others, given a unit-of-work factory: each claims and acts on one
row in a unit of its own (`with uow: ... uow.commit()`), so one failure leaves the rest done.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from services.sla.domain.definitions import SlaDefinition
from services.sla.domain.months import Month
from services.sla.domain.periods import Period
from services.sla.domain.standing import statuses_below
from services.sla.domain.timers import Timer
from services.sla.service_layer.definitions import open_period
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from services.sla.service_layer.windows import refresh_window, refresh_windows

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
        timer = uow.timers.claim(timer_id, due_at, now)
        if timer is None:
            return False
        definition = uow.definitions.get(timer.org, timer.contract_id)
        metric = definition.metric(timer.metric_key) if definition else None
        window = None
        if metric is not None:
            timer.fire(definition, metric, now)
            uow.collect(timer)
            _note_announced(uow, timer)
            window = (timer.org, timer.contract_id, timer.metric_key, timer.period)
        uow.commit()
    return window


def _remeasure(uow: SlaUnitOfWork, org: str, contract_id: str, key: str, period: str, now: dt.datetime) -> None:
    with uow:
        definition = uow.definitions.get(org, contract_id)
        if definition is not None:
            refresh_windows(uow, definition, [(key, period)], now)
            uow.commit()


def _note_announced(uow: SlaUnitOfWork, timer: Timer) -> None:
    """The window already stands where the timer said, so measuring it next does not announce it again."""
    status = timer.announced_status()
    uow.windows.raise_status(timer.org, timer.contract_id, timer.metric_key, timer.period, status, statuses_below(status))


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
        month = uow.periods.claim(period_id, now)
        if month is None:
            return 0   # another replica closed it
        definition = uow.definitions.get(org, contract_id)
        if definition is not None:
            close_period(uow, definition, month, now)
        uow.commit()
    return 1


def close_period(uow: SlaUnitOfWork, definition: SlaDefinition, month: Month, now: dt.datetime) -> None:
    period = Period.parse(month.period)
    month.close(definition, [(m, refresh_window(uow, definition, m, period, now, closing=True))
                             for m in definition.metrics])     # records sla.period_closed, sla.credit_assessed
    uow.periods.save(month)
    uow.collect(month)
    following = period.next()
    if following.first_day() <= definition.end_date and definition.metrics:
        open_period(uow, definition, following, now)
