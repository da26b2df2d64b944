"""Service credits: tiers by how far the target was missed, per breach or per window, and the monthly cap."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.credits import assess, tier_share
from services.sla.domain.definitions import MetricDefinition
from shared.events.contracts import CreditRule, CreditTier, SlaMetric

D = Decimal
FEE = D("100000.00")
TIERS = [CreditTier(miss_up_to=D("0.01"), share_of_monthly_fee=D("0.02")),
         CreditTier(miss_up_to=D("0.05"), share_of_monthly_fee=D("0.05")),
         CreditTier(miss_up_to=None, share_of_monthly_fee=D("0.10"))]


def metric(key: str, kind: str, mode: str, tiers=TIERS, target: str = "0.8") -> MetricDefinition:
    terms = SlaMetric(key=key, kind=kind, label=key, target=D(target), priority="P1" if kind == "resolution" else None,
                      threshold_seconds=20 if kind == "service_level" else None,
                      credit=CreditRule(mode=mode, tiers=tiers))
    return MetricDefinition(terms, 1)


@pytest.mark.parametrize("miss,share", [(D("0"), D("0")), (D("0.005"), D("0.02")), (D("0.01"), D("0.02")),
                                        (D("0.03"), D("0.05")), (D("0.2"), D("0.10"))])
def test_tier_is_chosen_by_how_far_the_target_was_missed(miss, share):
    assert tier_share(CreditRule(mode="per_window", tiers=list(reversed(TIERS))), miss) == share


def test_a_miss_beyond_every_bounded_tier_takes_the_largest():
    rule = CreditRule(mode="per_window", tiers=TIERS[:2])
    assert tier_share(rule, D("0.5")) == D("0.05")


def test_per_window_credit_once_for_a_missed_month():
    sl = metric("sl", "service_level", "per_window")
    outcome = WindowOutcome("breached", D("0.77"), False, 5000, 1, miss=D("0.03"))
    result = assess([(sl, outcome)], FEE, cap_share=None)
    assert result.amount == D("5000.00") and result.metric_keys == ["sl"] and not result.capped


def test_per_breach_credit_for_each_late_ticket():
    p1 = metric("p1", "resolution", "per_breach", tiers=[CreditTier(miss_up_to=D("0.5"), share_of_monthly_fee=D("0.01")),
                                                         CreditTier(miss_up_to=None, share_of_monthly_fee=D("0.02"))],
                target="240")
    outcome = WindowOutcome("breached", D("0.7"), False, 10, 3, miss=D("1.5"),
                            breach_misses=(D("0.2"), D("0.5"), D("1.5")))
    result = assess([(p1, outcome)], FEE, cap_share=D("0.15"))
    assert result.amount == D("4000.00")     # 1 % + 1 % + 2 %


def test_credits_stop_at_the_monthly_cap():
    p1 = metric("p1", "resolution", "per_breach", tiers=[CreditTier(miss_up_to=None, share_of_monthly_fee=D("0.02"))],
                target="240")
    sl = metric("sl", "service_level", "per_window")
    tickets = WindowOutcome("breached", D("0.5"), False, 12, 6, miss=D("1"), breach_misses=(D("1"),) * 6)
    calls = WindowOutcome("breached", D("0.6"), False, 9000, 1, miss=D("0.2"))
    result = assess([(p1, tickets), (sl, calls)], FEE, cap_share=D("0.15"))
    assert [(line.metric_key, line.share) for line in result.lines] == [("p1", D("0.12")), ("sl", D("0.10"))]
    assert result.capped and result.share == D("0.15") and result.amount == D("15000.00")


def test_met_targets_and_metrics_without_rules_earn_nothing():
    sl = metric("sl", "service_level", "per_window")
    plain = MetricDefinition(SlaMetric(key="csat", kind="csat", label="csat", target=D("4.5")), 1)
    result = assess([(sl, WindowOutcome("ok", D("0.85"), True, 100)),
                     (plain, WindowOutcome("breached", D("4.0"), False, 10, 1, miss=D("0.5")))], FEE, D("0.15"))
    assert result.amount == D("0.00") and result.lines == ()


def test_no_monthly_fee_means_no_amount():
    sl = metric("sl", "service_level", "per_window")
    result = assess([(sl, WindowOutcome("breached", D("0.7"), False, 100, 1, miss=D("0.1")))], None, None)
    assert result.share == D("0.10") and result.amount == D("0.00")
