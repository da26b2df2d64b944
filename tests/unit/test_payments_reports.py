"""Receivables reports (aging, cash-flow forecast, their CSV) and the iCalendar feed, from domain objects."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from icalendar import Calendar

from services.payments.adapters import csv_export, ical
from services.payments.domain.late_fees import Exposure, LateFeeRule, LateFeeTerms, statement
from services.payments.domain.reports import aging, aging_bucket, cash_flow
from services.payments.domain.schedule import PaymentSchedule
from tests.unit.test_payments_domain import accept, by_key, d, software_development_terms


@pytest.mark.parametrize("due,bucket", [
    ("2026-10-31", "not_yet_due"), ("2026-10-30", "not_yet_due"), ("2026-10-29", "1_30"), ("2026-09-30", "1_30"),
    ("2026-09-29", "31_60"), ("2026-08-31", "31_60"), ("2026-08-30", "61_90"), ("2026-08-01", "61_90"),
    ("2026-07-31", "over_90"),
])
def test_aging_buckets_count_days_past_the_due_date(due, bucket):
    assert aging_bucket(d(due), d("2026-10-30")) == bucket


def sample(contract_id: str = "c1", signed: str = "2026-09-01") -> PaymentSchedule:
    return PaymentSchedule.from_terms(software_development_terms(contract_id=contract_id), d(signed), d(signed))


def test_aging_groups_what_is_payable_by_contract_with_totals_per_currency():
    one, two = sample("c1"), sample("c2", "2026-07-01")
    one.record_payment(by_key(one, "signing").id, D("70370.37"), d("2026-09-05"), "r", "fin")
    accept(one, "requirements_confirmed", d("2026-10-20"))          # due 23 October
    report = aging([one, two], d("2026-10-30"))
    lines = {line.contract_id: line.buckets for line in report.lines}
    assert lines["c1"]["31_60"] == D("300000.00")                   # signing, due 11 Sep, partly paid
    assert lines["c1"]["1_30"] == D("370370.37")                    # requirements
    assert lines["c2"]["over_90"] == D("370370.37")                 # due 13 Jul (11 Jul is a Saturday)
    totals = report.totals()["CNY"]
    assert (totals["1_30"], totals["31_60"], totals["over_90"]) == (D("370370.37"), D("300000.00"), D("370370.37"))
    text = csv_export.aging_csv(report).decode("utf-8-sig")
    assert text.splitlines()[0] == "as_of,contract_id,number,currency,not_yet_due,1_30,31_60,61_90,over_90,total"
    assert "2026-10-30,TOTAL,,CNY,0.00,370370.37,300000.00,0.00,370370.37,1040740.74" in text


def test_cash_flow_spreads_what_is_owed_over_the_months_it_is_expected():
    s = sample()
    lines = cash_flow([s], d("2026-09-05"), 6)
    months = {(line.month, line.currency): line.amount for line in lines}
    # signing due 11 Sep; requirements planned 20 Sep → due 23 Sep (3 working days, 20 Sep is worked:
    # 21, 22, 23 — the 20th is the trigger day itself); final planned 20 Dec → due 11 Jan 2027
    # (15 working days); the retention a year after that, beyond six months.
    assert months[("2026-09", "CNY")] == D("740740.74")
    assert months[("2027-01", "CNY")] == D("370370.36")
    assert months[("later", "CNY")] == D("123456.79")
    assert [line.month for line in lines][:6] == ["2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-02"]
    # Once overdue, the signing tranche is shown apart.
    s.advance_to(d("2026-10-01"))
    overdue = [line for line in cash_flow([s], d("2026-10-01"), 3) if line.month == "overdue"]
    assert [(line.amount, line.tranches) for line in overdue] == [(D("370370.37"), 1)]
    assert "overdue,CNY,370370.37,1" in csv_export.cash_flow_csv(cash_flow([s], d("2026-10-01"), 3)).decode("utf-8-sig")


def test_a_changed_late_fee_rule_applies_from_its_day_on_only():
    terms = LateFeeTerms.from_start(LateFeeRule(D("0.0005"))).amended(d("2026-10-03"), LateFeeRule(D("0.001")))
    fees = statement(terms, [Exposure("t", "t", 0, D("10000.00"), d("2026-09-30"))], d("2026-10-04"))
    assert [(x.day, x.fee) for x in fees.days] == [
        (d("2026-10-01"), D("5.00")), (d("2026-10-02"), D("5.00")), (d("2026-10-03"), D("10.00")),
        (d("2026-10-04"), D("10.00"))]
    assert terms.amended(d("2026-11-01"), LateFeeRule(D("0.001"))) is terms      # no change, no new entry


def test_the_calendar_feed_lists_upcoming_due_dates_and_milestone_deadlines():
    s = sample()
    accept(s, "final_acceptance", d("2026-09-30"))
    stamp = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    cal = Calendar.from_ical(ical.render([s], d("2026-10-01"), "Acme", stamp))
    assert str(cal["X-WR-CALNAME"]) == "Acme" and str(cal["VERSION"]) == "2.0"
    events = sorted((e.decoded("dtstart"), str(e["categories"].cats[0]), str(e["uid"])) for e in cal.walk("VEVENT"))
    assert [(day, category) for day, category, _ in events] == [
        (dt.date(2026, 9, 11), "Payment due"),          # overdue, still to be chased
        (dt.date(2026, 10, 27), "Payment due"),          # final
        (dt.date(2027, 11, 1), "Payment due"),           # retention
    ]  # requirements' deadline (20 Sep) has passed; final acceptance is accepted
    assert all(uid.endswith("@qiyue") for _, _, uid in events)
    first = next(e for e in cal.walk("VEVENT") if e.decoded("dtstart") == dt.date(2026, 9, 11))
    assert str(first["summary"]).startswith("OVERDUE: payment CNY 370,370.37")
    assert first.decoded("dtend") == dt.date(2026, 9, 12)
