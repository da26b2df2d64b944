"""Service credits: what a month's misses cost the vendor, per the contract's rules and cap.

A rule pays per breach (each late ticket) or per window (once if the month missed), at the
share of the monthly fee of the tier the miss falls in; tiers go by how far the target was
missed. The month's credits together never exceed the cap (a share of the monthly fee).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import MetricDefinition
from shared.events.contracts import CreditRule

ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class CreditLine:
    metric_key: str
    share: Decimal        # of the monthly fee, before the cap
    breaches: int


@dataclass(frozen=True)
class CreditAssessment:
    lines: tuple[CreditLine, ...]
    share: Decimal        # after the cap
    amount: Decimal
    capped: bool

    @property
    def metric_keys(self) -> list[str]:
        return [line.metric_key for line in self.lines]


def tier_share(rule: CreditRule, miss: Decimal) -> Decimal:
    """The share of the monthly fee for a miss of this size (nothing when the target was met).

    Tiers are matched from the smallest bound up; a tier without bound takes any larger miss.
    A miss beyond every bound when no tier is unbounded takes the largest tier.
    """
    if miss <= 0 or not rule.tiers:
        return ZERO
    ordered = sorted(rule.tiers, key=lambda t: (t.miss_up_to is None, t.miss_up_to or ZERO))
    for tier in ordered:
        if tier.miss_up_to is None or miss <= tier.miss_up_to:
            return tier.share_of_monthly_fee
    return ordered[-1].share_of_monthly_fee


def credit_line(metric: MetricDefinition, outcome: WindowOutcome) -> CreditLine | None:
    rule = metric.terms.credit
    if rule is None or not outcome.breached:
        return None
    if rule.mode == "per_breach" and outcome.breach_misses:
        share = sum((tier_share(rule, miss) for miss in outcome.breach_misses), ZERO)
    else:
        share = tier_share(rule, outcome.miss)
    return CreditLine(metric.key, share, outcome.breaches) if share > 0 else None


def assess(outcomes: Iterable[tuple[MetricDefinition, WindowOutcome]], monthly_fee: Decimal | None,
           cap_share: Decimal | None) -> CreditAssessment:
    lines = tuple(line for metric, outcome in outcomes if (line := credit_line(metric, outcome)) is not None)
    uncapped = sum((line.share for line in lines), ZERO)
    share = min(uncapped, cap_share) if cap_share is not None else uncapped
    amount = (share * (monthly_fee or ZERO)).quantize(CENT, rounding=ROUND_HALF_UP)
    return CreditAssessment(lines, share, amount, capped=share < uncapped)
