"""Definitions from contract terms: each metric linked to its clause and contract version; amendments;
and what samples and ticket events must say to be counted."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.sla.domain.definitions import amend, check_sla_terms, definition_from_terms
from services.sla.domain.periods import Period
from services.sla.domain.samples import check_sample, check_ticket_event, windows_touched
from shared.errors import Invalid
from shared.events.contracts import ContractTerms, Party, ServiceHours, SlaMetric, SlaTerms
from shared.events.sla import MetricSampleRecorded, TicketEventRecorded

HOURS = ServiceHours(hours={d: [("09:00", "18:00")] for d in range(1, 6)})
P1 = SlaMetric(key="p1-res", kind="resolution", label="P1 resolution", target=Decimal(240), priority="P1",
               clause_key="sla.resolution")
SL = SlaMetric(key="sl", kind="service_level", label="80/20", target=Decimal("0.8"), threshold_seconds=20)
ANY_RESPONSE = SlaMetric(key="fr", kind="first_response", label="First response", target=Decimal(30))


def terms(version: int, metrics, sla: bool = True) -> ContractTerms:
    return ContractTerms(
        contract_id="c1", org="acme", number="QY-1", version=version, kind="call_centre", language="zh-CN",
        title="Hotline", total_amount=Decimal("1200000"), monthly_fee=Decimal("100000"),
        effective_date=dt.date(2026, 10, 1), end_date=dt.date(2027, 9, 30),
        parties=[Party(role="client", name="甲"), Party(role="vendor", name="乙")],
        sla=SlaTerms(service_hours=HOURS, metrics=metrics, credit_cap_share=Decimal("0.15")) if sla else None)


def test_every_metric_links_to_its_clause_and_contract_version():
    definition = definition_from_terms(terms(3, [P1, SL]))
    assert [(m.key, m.terms.clause_key, m.contract_version) for m in definition.metrics] == [
        ("p1-res", "sla.resolution", 3), ("sl", "sla.service_levels", 3)]
    assert definition.timezone == "Asia/Shanghai" and definition.credit_cap_share == Decimal("0.15")


def test_ticket_metrics_are_chosen_by_priority():
    definition = definition_from_terms(terms(1, [P1, SL, ANY_RESPONSE]))
    assert [m.key for m in definition.ticket_metrics("P1")] == ["p1-res", "fr"]
    assert [m.key for m in definition.ticket_metrics("P3")] == ["fr"]
    assert [m.key for m in definition.window_metrics()] == ["sl"]


def test_amendment_keeps_links_of_unchanged_metrics():
    current = definition_from_terms(terms(1, [P1, SL]))
    faster = P1.model_copy(update={"target": Decimal(120)})
    amended, amendment = amend(current, definition_from_terms(terms(2, [faster, ANY_RESPONSE])))
    assert (amendment.added, amendment.removed, amendment.changed) == (("fr",), ("sl",), ("p1-res",))
    assert {m.key: m.contract_version for m in amended.metrics} == {"p1-res": 2, "fr": 2}
    again, nothing = amend(amended, definition_from_terms(terms(3, [faster, ANY_RESPONSE])))
    assert {m.key: m.contract_version for m in again.metrics} == {"p1-res": 2, "fr": 2}
    assert not nothing.touches_metrics and again.contract_version == 3


def test_a_contract_without_service_levels_defines_nothing():
    assert definition_from_terms(terms(1, [], sla=False)).metrics == ()


@pytest.mark.parametrize("metric,pointer", [
    (SlaMetric(key="x", kind="service_level", label="x", target=Decimal("0.8")), "/sla/metrics/0/threshold_seconds"),
    (SlaMetric(key="x", kind="availability", label="x", target=Decimal("99.9")), "/sla/metrics/0/target"),
    (SlaMetric(key="x", kind="resolution", label="x", target=Decimal(0), priority="P1"), "/sla/metrics/0/target"),
    (SlaMetric(key="x", kind="report_delivery", label="x", target=Decimal("2.5")), "/sla/metrics/0/target"),
    (SlaMetric(key="x", kind="csat", label="x", target=Decimal("4"), at_risk_share=Decimal("1.5")),
     "/sla/metrics/0/at_risk_share"),
])
def test_unmeasurable_promises_are_refused_by_pointer(metric, pointer):
    with pytest.raises(Invalid) as refused:
        check_sla_terms(SlaTerms(service_hours=HOURS, metrics=[metric]))
    assert [e["pointer"] for e in refused.value.errors] == [pointer]


def test_duplicate_metric_keys_are_refused():
    with pytest.raises(Invalid) as refused:
        check_sla_terms(SlaTerms(service_hours=HOURS, metrics=[SL, SL]))
    assert refused.value.errors[0]["pointer"] == "/sla/metrics/1/key"


def sample(**kw) -> MetricSampleRecorded:
    return MetricSampleRecorded(contract_id="c1", org="acme", source_id="s", **kw)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def test_samples_must_say_what_their_kind_needs():
    assert check_sample(sample(kind="interval_stats", start=utc(2026, 10, 1), end=utc(2026, 10, 1, 0, 15),
                               offered=10, answered_within_threshold=8)) == []
    problems = check_sample(sample(kind="interval_stats", start=utc(2026, 10, 1, 1), end=utc(2026, 10, 1),
                                   offered=10, answered_within_threshold=11), "/items/4")
    assert [p["pointer"] for p in problems] == ["/items/4/end", "/items/4/answered_within_threshold"]
    assert [p["pointer"] for p in check_sample(sample(kind="survey", at=utc(2026, 10, 1)))] == ["/score"]
    assert [p["pointer"] for p in check_sample(sample(kind="report_delivered", at=utc(2026, 11, 3)))] == \
        ["/report_period"]
    opened = TicketEventRecorded(contract_id="c1", org="acme", source_id="e", ticket_id="t", kind="opened",
                                 at=utc(2026, 10, 1))
    assert check_ticket_event(opened)[0]["pointer"] == "/priority"


def test_a_sample_counts_in_the_windows_it_touches():
    now = utc(2026, 12, 2)
    outage = sample(kind="availability", state="down", start=utc(2026, 10, 31, 15), end=utc(2026, 10, 31, 17))
    assert windows_touched(outage, "Asia/Shanghai", now) == [Period(2026, 10), Period(2026, 11)]
    assert windows_touched(outage, "UTC", now) == [Period(2026, 10)]
    report = sample(kind="report_delivered", at=utc(2026, 11, 4), report_period="2026-10")
    assert windows_touched(report, "Asia/Shanghai", now) == [Period(2026, 11)]   # counted in the month it is due
    # An outage still going on runs through every month up to the present.
    still_down = sample(kind="availability", state="down", start=utc(2026, 10, 31, 15))
    assert windows_touched(still_down, "UTC", now) == [Period(2026, 10), Period(2026, 11), Period(2026, 12)]


def test_an_availability_sample_may_leave_its_end_open_unless_it_is_maintenance():
    assert check_sample(sample(kind="availability", state="down", start=utc(2026, 10, 1))) == []
    assert check_sample(sample(kind="availability", state="up", start=utc(2026, 10, 1))) == []
    assert [p["pointer"] for p in check_sample(sample(kind="availability", state="maintenance",
                                                      start=utc(2026, 10, 1)), "/items/0")] == ["/items/0/end"]
    assert [p["pointer"] for p in check_sample(sample(kind="availability", start=utc(2026, 10, 1)))] == ["/state"]
