"""Windows: where each metric stands in its month, measured again whenever its input changes.

Called inside a use case's unit of work (it neither opens nor commits one).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from services.sla.domain import compliance
from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.measurement import (TIMER_DRIVEN, availability_facts, calendar_of, measure_window,
                                             report_deadline, report_delivered_at, report_owed)
from services.sla.domain.periods import Period
from services.sla.domain.ticket_clock import TimerPlan
from services.sla.service_layer.timers import sync_timers
from services.sla.service_layer.unit_of_work import SlaUnitOfWork

WindowKey = tuple[str, str]          # (metric key, period)


def refresh_windows(uow: SlaUnitOfWork, definition: SlaDefinition, keys: Iterable[WindowKey],
                    now: dt.datetime) -> None:
    """Measure windows again after their input changed; a month already closed is closed again if that changed it."""
    keys = sorted(set(keys))
    for key, period in keys:
        metric = definition.metric(key)
        if metric is not None:
            refresh_window(uow, definition, metric, Period.parse(period), now)
    _close_again(uow, definition, {period for _, period in keys}, now)


def _close_again(uow: SlaUnitOfWork, definition: SlaDefinition, periods: set[str], now: dt.datetime) -> None:
    """Late input (or a late deadline passing) in a closed month: its compliance and credit are announced again
    if they changed. The month's row is locked first, so concurrent corrections are numbered one after another."""
    if not periods:
        return
    for month in uow.periods.closed_for_update(definition.org, definition.contract_id, periods):
        period = Period.parse(month.period)
        month.close(definition, [(m, refresh_window(uow, definition, m, period, now, closing=True))
                                 for m in definition.metrics])
        uow.periods.save(month)
        uow.collect(month)


def refresh_window(uow: SlaUnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                   now: dt.datetime, closing: bool = False) -> WindowOutcome:
    """Measure one metric's window again, store where it stands, and announce a change of standing."""
    standing = uow.windows.get_or_add(definition.org, definition.contract_id, metric.key, str(period), now)
    closed = closing or standing.closed
    outcome = measure_window(uow.facts, definition, metric, period, now, closed)
    # Timer-driven metrics speak through their timers; the others announce a change of standing.
    standing.measured(metric, outcome, closed, now, announce=metric.kind not in TIMER_DRIVEN)
    uow.windows.save(standing, now)
    uow.collect(standing)
    if metric.kind == "report_delivery":
        _arm_report_timers(uow, definition, metric, period, now)
    if metric.kind == "availability":
        _arm_downtime_timers(uow, definition, metric, period, now, closed)
    uow.flush()
    return outcome


def _arm_downtime_timers(uow: SlaUnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                         now: dt.datetime, closed: bool) -> None:
    """While an outage goes on, the moments it will use up the at-risk share and the whole of the month's
    allowed downtime are due even if no input arrives. Moments already past were announced by the window."""
    tz = definition.timezone
    window = (period.starts_at(tz), period.ends_at(tz))
    down, planned = availability_facts(uow.facts, definition, metric, window)
    crossings = {} if closed else compliance.downtime_crossings(metric.terms, window, down, planned)
    ahead = {kind: at for kind, at in crossings.items() if at > now}
    actual = {kind: str(compliance.availability(metric.terms, window, down, planned, at, False).actual)
              for kind, at in ahead.items()}
    breach = crossings.get("breach")
    sync_timers(uow, definition, metric.key, str(period), str(period),
                [TimerPlan(kind, 1, at) for kind, at in ahead.items()],
                {"deadline": breach.isoformat() if breach else None, "actual": actual}, now, retract_breaches=False)


def _arm_report_timers(uow: SlaUnitOfWork, definition: SlaDefinition, metric: MetricDefinition, period: Period,
                       now: dt.datetime) -> None:
    """A report still owed: at risk once the at-risk share of its working days is used, breached after the last."""
    due = report_deadline(definition, metric, period)
    delivered = report_delivered_at(uow.facts, definition, metric, period)
    owed = report_owed(definition, period) and not (delivered is not None and delivered < due)
    at_risk = compliance.report_at_risk(calendar_of(definition), period.first_day(), int(metric.terms.target),
                                        metric.terms.at_risk_share, definition.timezone)
    plans = [TimerPlan("at_risk", 1, at_risk), TimerPlan("breach", 1, due)] if owed else []
    sync_timers(uow, definition, metric.key, str(period), str(period), plans,
                {"report_period": str(period.previous()), "deadline": due.isoformat()}, now)
