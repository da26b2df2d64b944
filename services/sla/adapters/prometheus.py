"""Prometheus gauges per contract and metric, read from the database at scrape time.

A collector (rather than gauges set by whichever replica handled the input) means every replica
reports the same numbers: where each metric stands in its latest window.
"""
from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from services.sla.adapters.tables import MetricRow, TicketClockRow, WindowResultRow
from shared.db import Database
from shared.uow import utcnow

_STATUS_VALUE = {"ok": 0, "at_risk": 1, "breached": 2}
LABELS = ["org", "contract_id", "metric"]


class SlaCollector:
    def __init__(self, db: Database):
        self.db = db

    def describe(self):
        return list(self._families())

    def _families(self):
        return (
            GaugeMetricFamily("qiyue_sla_actual", "Actual value of the SLA metric so far in its latest window "
                              "(share, score, or working day)", labels=LABELS),
            GaugeMetricFamily("qiyue_sla_target", "Target of the SLA metric", labels=LABELS),
            GaugeMetricFamily("qiyue_sla_status", "Standing in the latest window: 0 ok, 1 at risk, 2 breached",
                              labels=LABELS),
            GaugeMetricFamily("qiyue_sla_breaches", "Breaches counted in the latest window", labels=LABELS),
            GaugeMetricFamily("qiyue_sla_open_tickets_breached", "Open tickets past their deadline",
                              labels=LABELS),
        )

    def collect(self):
        actual, target, status, breaches, open_breached = self._families()
        now = utcnow()
        with self.db.read_session() as s:
            latest = (select(WindowResultRow.org, WindowResultRow.contract_id, WindowResultRow.metric_key,
                             func.max(WindowResultRow.period).label("period"))
                      .group_by(WindowResultRow.org, WindowResultRow.contract_id, WindowResultRow.metric_key).subquery())
            rows = s.execute(select(WindowResultRow, MetricRow.terms).join(latest, (
                (WindowResultRow.org == latest.c.org) & (WindowResultRow.contract_id == latest.c.contract_id)
                & (WindowResultRow.metric_key == latest.c.metric_key) & (WindowResultRow.period == latest.c.period))
            ).join(MetricRow, ((MetricRow.org == WindowResultRow.org) & (MetricRow.contract_id == WindowResultRow.contract_id)
                               & (MetricRow.key == WindowResultRow.metric_key)))).all()
            late = dict(((o, c, m), n) for o, c, m, n in s.execute(
                select(TicketClockRow.org, TicketClockRow.contract_id, TicketClockRow.metric_key, func.count())
                .where(TicketClockRow.state.in_(("running", "paused")), TicketClockRow.breached_at <= now)
                .group_by(TicketClockRow.org, TicketClockRow.contract_id, TicketClockRow.metric_key)).all())
        for row, terms in rows:
            labels = [row.org, row.contract_id, row.metric_key]
            target.add_metric(labels, float(terms["target"]))
            breaches.add_metric(labels, row.breaches)
            open_breached.add_metric(labels, late.get((row.org, row.contract_id, row.metric_key), 0))
            if row.actual is not None:
                actual.add_metric(labels, float(row.actual))
            if row.status in _STATUS_VALUE:
                status.add_metric(labels, _STATUS_VALUE[row.status])
        yield from (actual, target, status, breaches, open_breached)


def install(runtime) -> None:
    runtime.metrics.registry.register(SlaCollector(runtime.db))
