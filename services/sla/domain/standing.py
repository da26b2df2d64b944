"""A window's standing: where one metric stands in one month, as last measured and announced.

The aggregate behind `sla_window_results`. Measuring it again records what the change of
standing says (ok → at risk → breached, and back: `sla.recovered`); a timer that already
announced a standing marks it, so the next measurement does not say it twice.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import MetricDefinition
from shared.events.sla import SlaAtRisk, SlaBreached, SlaRecovered

STANDING_RANK = {"no_data": 0, "ok": 0, "at_risk": 1, "breached": 2}


@dataclass
class WindowStanding:
    id: str
    org: str
    contract_id: str
    metric_key: str
    period: str
    status: str = "no_data"
    closed: bool = False
    actual: Decimal | None = None
    met: bool | None = None
    items: int = 0
    breaches: int = 0
    miss: Decimal = Decimal(0)
    events: list = field(default_factory=list, repr=False, compare=False)

    def measured(self, metric: MetricDefinition, outcome: WindowOutcome, closed: bool, now: dt.datetime,
                 announce: bool) -> None:
        """Take the new outcome; with `announce` (window metrics; timer-driven ones speak through timers),
        record the event a change of rank says."""
        previous = self.status
        self.status, self.actual, self.met = outcome.status, outcome.actual, outcome.met
        self.items, self.breaches, self.miss, self.closed = outcome.items, outcome.breaches, outcome.miss, closed
        if announce:
            event = self._change(metric, previous, outcome, now)
            if event is not None:
                self.events.append(event)

    def _change(self, metric: MetricDefinition, previous: str, outcome: WindowOutcome, now: dt.datetime):
        before, after = STANDING_RANK[previous], STANDING_RANK[outcome.status]
        common = dict(contract_id=self.contract_id, org=self.org, metric_key=metric.key, metric_kind=metric.kind,
                      period=self.period, target=metric.terms.target, actual=outcome.actual)
        if after > before and outcome.status == "at_risk":
            return SlaAtRisk(at=now, **common)
        if after > before:
            return SlaBreached(breached_at=now, detected_at=now, **common)
        if after < before:
            return SlaRecovered(previous_status=previous, status=outcome.status, **common)
        return None


def statuses_below(status: str) -> list[str]:
    """The standings a timer announcing `status` lifts a window out of."""
    return [s for s, rank in STANDING_RANK.items() if rank < STANDING_RANK[status]]
