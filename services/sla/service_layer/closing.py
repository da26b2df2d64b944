"""A month's close: its compliance announced and the credit it earns assessed, and both said again,
corrected, when input arriving after the close changes them."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Sequence

from services.sla.domain import credits
from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from shared.events.sla import MetricCompliance, SlaCreditAssessed, SlaPeriodClosed
from shared.ids import new_id

Outcomes = Sequence[tuple[MetricDefinition, WindowOutcome]]


def announce_close(uow: SlaUnitOfWork, definition: SlaDefinition, row, outcomes: Outcomes,
                   now: dt.datetime) -> None:
    """`sla.period_closed` with every metric's compliance, and `sla.credit_assessed` when the credit changed.

    The first close is revision 1. Closing again announces only a change: a new revision when the
    compliance differs from the one last announced, and a corrected credit (new credit id, what was
    already assessed alongside) when the amount differs too. A month is a stored row (`uow.periods`),
    not a domain aggregate, so its announcements are emitted here.
    """
    metrics = [compliance_of(m, o) for m, o in outcomes]
    announced = [m.model_dump(mode="json") for m in metrics]
    if row.revision and announced == row.announced:
        return
    row.revision, row.announced = row.revision + 1, announced
    uow.emit(SlaPeriodClosed(contract_id=definition.contract_id, org=definition.org, period=row.period,
                                 revision=row.revision, contract_version=definition.contract_version,
                                 starts_at=row.starts_at, ends_at=row.ends_at, metrics=metrics))
    assessment = credits.assess(outcomes, definition.monthly_fee, definition.credit_cap_share)
    before = row.credit_amount if row.credit_id else Decimal(0)
    if assessment.amount == before:
        return
    replaces = row.credit_id
    row.credit_id, row.credit_amount = new_id(), assessment.amount
    row.credit_detail = {"share": str(assessment.share), "capped": assessment.capped, "revision": row.revision,
                         "previously_assessed": str(before),
                         "lines": [{"metric_key": l.metric_key, "share": str(l.share), "breaches": l.breaches}
                                   for l in assessment.lines]}
    uow.emit(SlaCreditAssessed(contract_id=definition.contract_id, org=definition.org, period=row.period,
                                   amount=assessment.amount, currency=definition.currency,
                                   metric_keys=assessment.metric_keys, credit_id=row.credit_id,
                                   revision=row.revision, previously_assessed=before, replaces=replaces))


def compliance_of(metric: MetricDefinition, outcome: WindowOutcome) -> MetricCompliance:
    return MetricCompliance(key=metric.key, kind=metric.kind, label=metric.terms.label, target=metric.terms.target,
                            actual=outcome.actual, met=outcome.met, status=outcome.status, items=outcome.items,
                            breaches=outcome.breaches, clause_key=metric.terms.clause_key,
                            contract_version=metric.contract_version)
