"""A contract's month: open until it ends, then closed with its compliance and the credit it earns,
and closed again, corrected, when input arriving after the close changes them.

The aggregate behind `sla_periods`; `close()` records `sla.period_closed` and `sla.credit_assessed`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Sequence

from services.sla.domain import credits
from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from shared.events.sla import MetricCompliance, SlaCreditAssessed, SlaPeriodClosed
from shared.ids import new_id

Outcomes = Sequence[tuple[MetricDefinition, WindowOutcome]]


@dataclass
class Month:
    id: str
    org: str
    contract_id: str
    period: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str = "open"
    revision: int = 0                       # sla.period_closed announcements made: 1 at the close, +1 a correction
    announced: list | None = None           # the compliance last announced
    credit_id: str | None = None
    credit_amount: Decimal | None = None
    credit_detail: dict | None = None
    events: list = field(default_factory=list, repr=False, compare=False)

    def close(self, definition: SlaDefinition, outcomes: Outcomes) -> None:
        """Announce every metric's compliance, and the credit when it changed.

        The first close is revision 1. Closing again announces only a change: a new revision when the
        compliance differs from the one last announced, and a corrected credit (new credit id, what was
        already assessed alongside) when the amount differs too.
        """
        metrics = [compliance_of(m, o) for m, o in outcomes]
        announced = [m.model_dump(mode="json") for m in metrics]
        if self.revision and announced == self.announced:
            return
        self.revision, self.announced = self.revision + 1, announced
        self.events.append(SlaPeriodClosed(
            contract_id=definition.contract_id, org=definition.org, period=self.period, revision=self.revision,
            contract_version=definition.contract_version, starts_at=self.starts_at, ends_at=self.ends_at,
            metrics=metrics))
        assessment = credits.assess(outcomes, definition.monthly_fee, definition.credit_cap_share)
        before = self.credit_amount if self.credit_id else Decimal(0)
        if assessment.amount == before:
            return
        replaces = self.credit_id
        self.credit_id, self.credit_amount = new_id(), assessment.amount
        self.credit_detail = {"share": str(assessment.share), "capped": assessment.capped, "revision": self.revision,
                              "previously_assessed": str(before),
                              "lines": [{"metric_key": l.metric_key, "share": str(l.share), "breaches": l.breaches}
                                        for l in assessment.lines]}
        self.events.append(SlaCreditAssessed(
            contract_id=definition.contract_id, org=definition.org, period=self.period, amount=assessment.amount,
            currency=definition.currency, metric_keys=assessment.metric_keys, credit_id=self.credit_id,
            revision=self.revision, previously_assessed=before, replaces=replaces))


def compliance_of(metric: MetricDefinition, outcome: WindowOutcome) -> MetricCompliance:
    return MetricCompliance(key=metric.key, kind=metric.kind, label=metric.terms.label, target=metric.terms.target,
                            actual=outcome.actual, met=outcome.met, status=outcome.status, items=outcome.items,
                            breaches=outcome.breaches, clause_key=metric.terms.clause_key,
                            contract_version=metric.contract_version)
