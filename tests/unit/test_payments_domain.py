"""The payments domain on its own: the software-development sample contract end to end, and each rule.

Every amount is checked to the fen. Dates are on the mainland-China calendar: National Day 2026
is 1–7 October with Sunday 20 September and Saturday 10 October worked in its place.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from services.payments.domain.due_dates import DueTerm, add_months
from services.payments.domain.late_fees import Exposure, LateFeeRule, Movement, statement
from shared.money import allocate
from services.payments.domain.schedule import PaymentSchedule, tranche_amounts
from shared.errors import Conflict, Forbidden, Invalid
from shared.events.contracts import ContractTerms

AT = dt.datetime(2026, 9, 1, 2, 0, tzinfo=dt.timezone.utc)
TOTAL = "1234567.89"


def software_development_terms(version: int = 1, contract_id: str = "c-sd-1", org: str = "acme", **changes) -> ContractTerms:
    """软件开发外包: 30 % on signing, 30 % on requirements confirmed, 30 % on final acceptance and a 10 %
    quality guarantee released 365 days after final acceptance; 0.05 %/day late fee capped at 0.2 %."""
    terms = dict(
        contract_id=contract_id, org=org, number="QY-SD-2026-001", version=version, kind="software_development",
        language="zh-CN", title="订单管理系统开发合同",
        parties=[{"role": "client", "name": "甲方科技有限公司"}, {"role": "vendor", "name": "乙方软件有限公司"}],
        currency="CNY", total_amount=TOTAL, effective_date="2026-09-01", end_date="2027-12-31", warranty_months=12,
        late_payment={"daily_rate": "0.0005", "cap_share": "0.002"},
        milestones=[{"key": "requirements_confirmed", "label": "需求规格说明书确认", "due_date": "2026-09-20"},
                    {"key": "final_acceptance", "label": "终验合格", "due_date": "2026-12-20"}],
        tranches=[
            # The amounts as a careless author would write them (each rounded half-up: one fen too many
            # in total), so the schedule splits the total by percentage instead.
            {"key": "signing", "label": "合同签订后预付款", "percent": "30", "amount": "370370.37",
             "trigger": {"kind": "on_signing"}, "due": {"days": 10, "unit": "calendar_days"}},
            {"key": "requirements", "label": "需求确认后付款", "percent": "30", "amount": "370370.37",
             "trigger": {"kind": "milestone", "milestone": "requirements_confirmed"},
             "due": {"days": 3, "unit": "working_days"}},
            {"key": "final", "label": "终验合格后付款", "percent": "30", "amount": "370370.37",
             "trigger": {"kind": "milestone", "milestone": "final_acceptance"},
             "due": {"days": 15, "unit": "working_days"}},
            {"key": "retention", "label": "质量保证金", "percent": "10", "amount": "123456.79", "is_retention": True,
             "trigger": {"kind": "after_tranche", "tranche": "final", "days": 365},
             "due": {"days": 30, "unit": "calendar_days"}},
        ],
    )
    terms.update(changes)
    return ContractTerms.model_validate(terms)


def amended_terms(contract_id: str = "c-sd-1") -> ContractTerms:
    """Version 2: a ¥100,000.00 change request paid on its acceptance; the other amounts as signed."""
    v1 = software_development_terms(contract_id=contract_id)
    tranches = [t.model_dump(mode="json") for t in v1.tranches]
    tranches[2]["amount"] = "370370.36"
    change = {"key": "change_request", "label": "变更需求验收后付款", "percent": "7.49", "amount": "100000.00",
              "trigger": {"kind": "milestone", "milestone": "cr_accepted"}, "due": {"days": 10, "unit": "working_days"}}
    return software_development_terms(
        version=2, contract_id=contract_id, total_amount="1334567.89", tranches=[*tranches[:3], change, tranches[3]],
        milestones=[*(m.model_dump(mode="json") for m in v1.milestones),
                    {"key": "cr_accepted", "label": "变更需求验收", "due_date": "2026-12-15"}])


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10), dt.timezone.utc)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def by_key(schedule: PaymentSchedule, key: str):
    return next(t for t in schedule.active_tranches() if t.key == key)


def types(events) -> list[str]:
    return [e.event_type for e in events]


def drain(schedule: PaymentSchedule) -> list:
    events, schedule.events = schedule.events, []
    return events


def accept(schedule, key, on, today=None, pm="pm-wang", client="client-li"):
    when = at(on)
    schedule.reach_milestone(key, pm, when, on)
    schedule.submit_milestone(key, pm, when, ["https://docs.example.cn/acceptance/" + key])
    return schedule.accept_milestone(key, client, when, on, today or on, "验收通过")


# ---------------------------------------------------------------------- the sample contract end to end

def test_software_development_contract_end_to_end():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))

    # 30/30/30/10 of ¥1,234,567.89, to the fen, adding up exactly.
    amounts = {t.key: t.amount for t in s.active_tranches()}
    assert amounts == {"signing": D("370370.37"), "requirements": D("370370.37"), "final": D("370370.36"),
                       "retention": D("123456.79")}
    assert sum(amounts.values()) == D(TOTAL)
    created, due = drain(s)
    assert created.event_type == "payment_schedule.created" and created.total_amount == D(TOTAL)
    assert [t.status for t in created.tranches] == ["due", "pending", "pending", "pending"]
    # Signing: due within 10 calendar days, on Friday 11 September.
    assert (due.event_type, due.tranche_key, due.amount, due.due_date) == (
        "payment.due", "signing", D("370370.37"), d("2026-09-11"))

    signing = by_key(s, "signing")
    invoice = s.issue_invoice(signing.id, "INV-2026-000001", d("2026-09-01"), "fin-zhao")
    assert invoice.amount == D("370370.37")
    # A partial payment the day before the due date.
    s.record_payment(signing.id, D("200000.00"), d("2026-09-10"), "BOC-0910-01", "fin-zhao")
    assert (signing.paid, signing.outstanding, signing.status) == (D("200000.00"), D("170370.37"), "due")
    drain(s)

    assert s.advance_to(d("2026-09-11")) == []          # due today is not overdue
    changes = s.advance_to(d("2026-09-12"))             # the day after: overdue
    assert [(c.before, c.after) for c in changes] == [("due", "overdue")]
    (overdue,) = drain(s)
    assert (overdue.event_type, overdue.amount, overdue.overdue_since) == (
        "payment.overdue", D("170370.37"), d("2026-09-12"))
    assert [b.through for b in s.book_late_fees(d("2026-09-12"))] == [d("2026-09-12")]
    (first_fee,) = drain(s)
    assert (first_fee.days, first_fee.amount, first_fee.capped) == (1, D("85.19"), False)

    # Requirements: rejected once, resubmitted, accepted on Friday 18 September. Three working days
    # later is Tuesday 22 September: Sunday 20 September is an adjusted working day (调休).
    when = at(d("2026-09-15"))
    s.reach_milestone("requirements_confirmed", "pm-wang", when, d("2026-09-15"))
    s.submit_milestone("requirements_confirmed", "pm-wang", when, ["https://docs.example.cn/srs-v1.pdf"])
    s.reject_milestone("requirements_confirmed", "client-li", when, "缺少接口清单")
    s.submit_milestone("requirements_confirmed", "pm-wang", when, ["https://docs.example.cn/srs-v2.pdf"])
    (requirements,) = s.accept_milestone("requirements_confirmed", "client-li", at(d("2026-09-18")),
                                         d("2026-09-18"), d("2026-09-18"), "确认")
    assert types(drain(s)) == ["milestone.submitted", "milestone.rejected", "milestone.submitted",
                               "milestone.accepted", "payment.due"]
    assert (requirements.triggered_on, requirements.due_date) == (d("2026-09-18"), d("2026-09-22"))
    history = [h.action for h in s.milestone("requirements_confirmed").history]
    assert history == ["reached", "submitted", "rejected", "submitted", "accepted"]

    inv2 = s.issue_invoice(requirements.id, "INV-2026-000002", d("2026-09-18"), "fin-zhao")
    s.record_payment(requirements.id, D("370370.37"), d("2026-09-22"), "BOC-0922-01", "fin-zhao")
    assert (requirements.status, requirements.outstanding, inv2.status) == ("settled", D("0.00"), "paid")

    # Final acceptance on Wednesday 30 September, the last working day before National Day:
    # 15 working days run to Tuesday 27 October (1–7 October off, Saturday 10 October worked).
    (final,) = accept(s, "final_acceptance", d("2026-09-30"))
    retention = by_key(s, "retention")
    assert (final.status, final.due_date) == ("due", d("2026-10-27"))
    # The retention waits 365 days after final acceptance; 30 calendar days later is Saturday
    # 30 October 2027, so it is due on Monday 1 November 2027.
    assert (retention.status, retention.triggered_on, retention.due_date) == (
        "scheduled", d("2027-09-30"), d("2027-11-01"))
    drain(s)

    # The rest of the signing tranche arrives 45 days late.
    s.record_payment(signing.id, D("170370.37"), d("2026-10-26"), "BOC-1026-01", "fin-zhao")
    assert (signing.status, signing.settled_on, invoice.status) == ("settled", d("2026-10-26"), "paid")
    (received,) = drain(s)
    assert (received.event_type, received.invoice_id, received.amount, received.outstanding) == (
        "payment.received", invoice.id, D("170370.37"), D("0.00"))
    fees = s.late_fees(d("2026-10-26"))
    assert [x.day for x in fees.days] == [d("2026-09-12") + dt.timedelta(days=i) for i in range(45)]
    assert {x.overdue_amount for x in fees.days} == {D("170370.37")}
    assert {x.full_fee for x in fees.days} == {D("85.19")}  # 85.185185 rounded half-up
    # The cap: 0.2 % of ¥1,234,567.89 = ¥2,469.14. 28 full days make ¥2,385.32, day 29 (10 October)
    # is charged the ¥83.82 left, the 16 days after it nothing.
    assert fees.cap == D("2469.14")
    assert [x.fee for x in fees.days[:28]] == [D("85.19")] * 28
    assert (fees.days[27].cumulative, fees.days[28].day, fees.days[28].fee) == (
        D("2385.32"), d("2026-10-10"), D("83.82"))
    assert [x.fee for x in fees.days[29:]] == [D("0.00")] * 16
    assert fees.total == D("2469.14") and sum(x.fee for x in fees.days) == D("2469.14")
    bookings = s.book_late_fees(d("2026-10-26"))
    assert [(b.before, b.through) for b in bookings] == [(d("2026-09-12"), d("2026-10-26"))]
    (fee_event,) = drain(s)
    assert (fee_event.from_day, fee_event.through_day, fee_event.days) == (d("2026-09-13"), d("2026-10-26"), 44)
    assert (fee_event.amount, fee_event.contract_total, fee_event.capped) == (D("2383.95"), D("2469.14"), True)
    assert s.late_fees(d("2026-12-31")).total == D("2469.14")   # settled: nothing more accrues

    # A ¥400,000.00 service credit, larger than the next unpaid tranche (final, ¥370,370.36):
    # final is settled by it, the ¥29,629.64 left comes off the retention, never below zero.
    note = s.receive_credit("sla-credit-2026-10", "2026-10", D("400000.00"), "CNY", ["availability"],
                            d("2026-10-27"))
    assert (final.credited, final.outstanding, final.status) == (D("370370.36"), D("0.00"), "settled")
    assert (retention.credited, retention.outstanding) == (D("29629.64"), D("93827.15"))
    assert note.remaining == D("0.00")
    applied = drain(s)
    assert [(e.tranche_key, e.amount, e.remaining) for e in applied] == [
        ("final", D("370370.36"), D("29629.64")), ("retention", D("29629.64"), D("0.00"))]
    assert s.receive_credit("sla-credit-2026-10", "2026-10", D("400000.00"), "CNY", [], d("2026-10-28")) is None

    # Amendment: a ¥100,000.00 change request. Signing and requirements are paid, final is settled:
    # they stay. The retention (unpaid, uninvoiced) is planned exactly as before: it stays too, with
    # its credit. Only the change request is new.
    assert s.rebaseline(amended_terms(), d("2026-11-02"), d("2026-11-02")) is True
    assert s.rebaseline(amended_terms(), d("2026-11-03"), d("2026-11-03")) is False  # redelivered
    active = {t.key: t for t in s.active_tranches()}
    assert [t.key for t in s.active_tranches()] == ["signing", "requirements", "final", "change_request", "retention"]
    assert {k: t.amount for k, t in active.items()} == {
        "signing": D("370370.37"), "requirements": D("370370.37"), "final": D("370370.36"),
        "change_request": D("100000.00"), "retention": D("123456.79")}
    assert s.scheduled_total() == D("1334567.89") == s.total_amount
    assert (active["change_request"].status, active["change_request"].credited,
            active["change_request"].outstanding) == ("pending", D("0.00"), D("100000.00"))
    assert active["retention"] is retention and retention.position == 4
    assert (retention.status, retention.credited, retention.triggered_on, retention.due_date) == (
        "scheduled", D("29629.64"), d("2027-09-30"), d("2027-11-01"))
    assert s.history() == []
    (rebaselined,) = drain(s)
    assert rebaselined.event_type == "payment_schedule.rebaselined"
    assert (rebaselined.version, rebaselined.previous_version, rebaselined.kept, rebaselined.superseded) == (
        2, 1, ["signing", "requirements", "final", "retention"], [])
    # The amendment raised the cap to 0.2 % of ¥1,334,567.89 from 2 November on; the days already
    # charged under the old cap are not charged again.
    assert s.late_fees(d("2026-12-31")).total == D("2469.14")
    assert s.late_fees(d("2026-12-31")).cap == D("2669.14")

    # The warranty ends: the scheduler releases the retention on 30 September 2027.
    assert s.advance_to(d("2027-09-29")) == []
    s.advance_to(d("2027-09-30"))
    due_event, released = drain(s)
    assert (due_event.event_type, due_event.tranche_key, due_event.amount) == ("payment.due", "retention",
                                                                               D("93827.15"))
    assert (released.event_type, released.amount, released.released_on, released.due_date) == (
        "retention.released", D("93827.15"), d("2027-09-30"), d("2027-11-01"))
    assert retention.status == "due"


# ---------------------------------------------------------------------- amounts

def test_allocation_to_the_fen_with_largest_remainders():
    assert allocate(D("1234567.89"), [D(30), D(30), D(30), D(10)]) == [
        D("370370.37"), D("370370.37"), D("370370.36"), D("123456.79")]
    assert allocate(D("100.00"), [D(1), D(1), D(1)]) == [D("33.34"), D("33.33"), D("33.33")]
    assert allocate(D("0.05"), [D(50), D(50)]) == [D("0.03"), D("0.02")]
    assert sum(allocate(D("999999.99"), [D(7), D(13), D(80)])) == D("999999.99")


def test_written_amounts_that_add_up_are_kept_as_signed():
    terms = software_development_terms(tranches=[
        {**t.model_dump(mode="json"), "amount": a} for t, a in zip(
            software_development_terms().tranches, ["370370.36", "370370.37", "370370.37", "123456.79"])])
    assert tranche_amounts(terms.tranches, D(TOTAL), whole_contract=True) == [
        D("370370.36"), D("370370.37"), D("370370.37"), D("123456.79")]


def test_percentages_that_do_not_add_up_and_amounts_that_do_not_either_are_refused():
    bad = [{**t.model_dump(mode="json"), "percent": "20", "amount": "1.00"} for t in software_development_terms().tranches]
    with pytest.raises(Invalid):
        PaymentSchedule.from_terms(software_development_terms(tranches=bad), d("2026-09-01"), d("2026-09-01"))


def test_a_tranche_following_itself_is_refused():
    tranches = [t.model_dump(mode="json") for t in software_development_terms().tranches]
    tranches[2]["trigger"] = {"kind": "after_tranche", "tranche": "retention", "days": 1}
    with pytest.raises(Invalid):
        PaymentSchedule.from_terms(software_development_terms(tranches=tranches), d("2026-09-01"), d("2026-09-01"))


# ---------------------------------------------------------------------- due dates

@pytest.mark.parametrize("triggered,term,due", [
    ("2026-09-30", DueTerm(10, "working_days"), "2026-10-20"),    # National Day skipped, 10 Oct worked
    ("2026-09-18", DueTerm(1, "working_days"), "2026-09-20"),     # Sunday 20 September is a working day
    ("2026-09-18", DueTerm(3, "working_days"), "2026-09-22"),
    ("2026-09-25", DueTerm(0, "working_days"), "2026-09-28"),     # Mid-Autumn Festival: next working day
    ("2026-09-01", DueTerm(10, "calendar_days"), "2026-09-11"),
    ("2026-09-21", DueTerm(10, "calendar_days"), "2026-10-08"),   # ends 1 Oct, a holiday: first day after
])
def test_due_dates_on_the_mainland_calendar(triggered, term, due):
    assert term.due_date(d(triggered)) == d(due)


def test_a_calendar_period_ending_on_an_adjusted_working_weekend_ends_that_day():
    # 10 October 2026 is a Saturday worked in place of a National Day day off: a working day.
    assert DueTerm(9, "calendar_days").due_date(d("2026-10-01")) == d("2026-10-10")


def test_months_are_added_clamped_to_the_end_of_the_month():
    assert add_months(d("2026-01-31"), 1) == d("2026-02-28")
    assert add_months(d("2026-09-30"), 12) == d("2027-09-30")
    assert add_months(d("2026-11-15"), 3) == d("2027-02-15")


def test_retention_counted_in_warranty_months_when_no_days_are_given():
    tranches = [t.model_dump(mode="json") for t in software_development_terms().tranches]
    tranches[3]["trigger"] = {"kind": "after_tranche", "tranche": "final"}
    s = PaymentSchedule.from_terms(software_development_terms(tranches=tranches, warranty_months=6),
                                   d("2026-09-01"), d("2026-09-01"))
    accept(s, "final_acceptance", d("2026-09-30"))
    assert by_key(s, "retention").triggered_on == d("2027-03-30")


def test_fixed_date_tranches_become_due_on_their_day():
    tranches = [t.model_dump(mode="json") for t in software_development_terms().tranches]
    tranches[1]["trigger"] = {"kind": "fixed_date", "date": "2026-12-01"}
    s = PaymentSchedule.from_terms(software_development_terms(tranches=tranches), d("2026-09-01"), d("2026-09-01"))
    fixed = by_key(s, "requirements")
    assert (fixed.status, fixed.due_date) == ("scheduled", d("2026-12-04"))  # 3 working days
    drain(s)
    assert [c.after for c in s.advance_to(d("2026-11-30"))] == ["overdue"]   # signing, unpaid since 11 Sep
    assert [c.after for c in s.advance_to(d("2026-12-01"))] == ["due"]
    assert fixed.status == "due"


# ---------------------------------------------------------------------- milestones

def test_milestone_acceptance_rules():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    key, when = "requirements_confirmed", at(d("2026-09-10"))
    with pytest.raises(Conflict):
        s.submit_milestone(key, "pm-wang", when, ["https://x.example/a"])   # not reached yet
    s.reach_milestone(key, "pm-wang", when, d("2026-09-10"))
    with pytest.raises(Invalid):
        s.submit_milestone(key, "pm-wang", when, [])                        # evidence required
    s.submit_milestone(key, "pm-wang", when, ["https://x.example/a"])
    with pytest.raises(Forbidden):
        s.accept_milestone(key, "pm-wang", when, d("2026-09-10"), d("2026-09-10"))  # four eyes
    with pytest.raises(Invalid):
        s.reject_milestone(key, "client-li", when, " ")                     # a rejection says why
    with pytest.raises(Invalid):
        s.accept_milestone(key, "client-li", when, d("2026-09-11"), d("2026-09-10"))  # not in the future
    s.accept_milestone(key, "client-li", when, d("2026-09-10"), d("2026-09-10"))
    with pytest.raises(Conflict):
        s.reject_milestone(key, "client-li", when, "too late")


def test_acceptance_dated_in_the_past_makes_the_tranche_overdue_on_the_next_run():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-10-30"))
    (requirements,) = accept(s, "requirements_confirmed", d("2026-09-18"), today=d("2026-10-30"))
    assert (requirements.status, requirements.due_date) == ("due", d("2026-09-22"))
    assert {c.tranche_id for c in s.advance_to(d("2026-10-30"))} == {requirements.id, by_key(s, "signing").id}


# ---------------------------------------------------------------------- invoices and payments

def test_invoices_only_for_payable_tranches_one_open_at_a_time():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    with pytest.raises(Conflict):
        s.issue_invoice(by_key(s, "final").id, "INV-2026-000001", d("2026-09-01"), "fin")   # pending
    signing = by_key(s, "signing")
    s.issue_invoice(signing.id, "INV-2026-000001", d("2026-09-01"), "fin")
    with pytest.raises(Conflict):
        s.invoiceable(signing.id)


def test_partial_payments_add_up_and_overpayment_is_refused():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    signing = by_key(s, "signing")
    s.record_payment(signing.id, D("0.37"), d("2026-09-02"), "r1", "fin")
    with pytest.raises(Invalid) as refused:
        s.record_payment(signing.id, D("370370.01"), d("2026-09-02"), "r2", "fin")
    assert refused.value.errors[0]["pointer"] == "/amount" and refused.value.extra["outstanding"] == "370370.00"
    with pytest.raises(Invalid):
        s.record_payment(signing.id, D("1.001"), d("2026-09-02"), "r3", "fin")
    with pytest.raises(Conflict):
        s.record_payment(by_key(s, "final").id, D("1.00"), d("2026-09-02"), "r4", "fin")  # not due
    s.record_payment(signing.id, D("370370.00"), d("2026-09-03"), "r5", "fin")
    assert (signing.status, signing.outstanding) == ("settled", D("0.00"))
    with pytest.raises(Invalid):
        s.record_payment(signing.id, D("0.01"), d("2026-09-03"), "r6", "fin")


# ---------------------------------------------------------------------- late fees

def test_late_fee_without_cap_over_45_days_rounded_half_up_each_day():
    rule = LateFeeRule(D("0.0005"))
    exposure = Exposure("t1", "signing", 0, D("370370.37"), d("2026-09-11"),
                        (Movement(d("2026-09-10"), D("200000.00")), Movement(d("2026-10-26"), D("170370.37"))))
    fees = statement(rule, [exposure], d("2026-12-31"))
    assert len(fees.days) == 45 and fees.total == D("3833.55") and not any(x.capped for x in fees.days)


def test_a_partial_payment_lowers_the_base_from_the_next_day():
    rule = LateFeeRule(D("0.0005"))
    exposure = Exposure("t1", "k", 0, D("10000.00"), d("2026-09-11"),
                        (Movement(d("2026-09-13"), D("5000.00")), Movement(d("2026-09-15"), D("5000.00"))))
    fees = statement(rule, [exposure], d("2026-09-30"))
    assert [(x.day, x.overdue_amount, x.fee) for x in fees.days] == [
        (d("2026-09-12"), D("10000.00"), D("5.00")), (d("2026-09-13"), D("10000.00"), D("5.00")),
        (d("2026-09-14"), D("5000.00"), D("2.50")), (d("2026-09-15"), D("5000.00"), D("2.50"))]


def test_the_cap_is_shared_by_all_tranches_of_the_contract():
    rule = LateFeeRule(D("0.001"), cap=D("25.00"))
    fees = statement(rule, [Exposure("a", "a", 0, D("10000.00"), d("2026-09-01")),
                            Exposure("b", "b", 1, D("5000.00"), d("2026-09-01"))], d("2026-09-03"))
    assert [(x.tranche_key, x.fee, x.cumulative) for x in fees.days] == [
        ("a", D("10.00"), D("10.00")), ("b", D("5.00"), D("15.00")),
        ("a", D("10.00"), D("25.00")), ("b", D("0.00"), D("25.00"))]
    assert fees.days[-1].capped and not fees.days[-2].capped


# ---------------------------------------------------------------------- credits

def test_a_credit_larger_than_everything_unpaid_is_carried_forward():
    s = PaymentSchedule.from_terms(software_development_terms(total_amount="1000.00", tranches=[
        {"key": "all", "label": "全款", "percent": "100", "amount": "1000.00", "trigger": {"kind": "on_signing"},
         "due": {"days": 30}}], milestones=[]), d("2026-09-01"), d("2026-09-01"))
    only = by_key(s, "all")
    s.record_payment(only.id, D("800.00"), d("2026-09-05"), "r1", "fin")
    note = s.receive_credit("cr-1", "2026-09", D("500.00"), "CNY", ["csat"], d("2026-10-05"))
    assert (only.credited, only.outstanding, only.status) == (D("200.00"), D("0.00"), "settled")
    assert note.remaining == D("300.00") == s.carried_forward()
    with pytest.raises(Invalid):
        s.receive_credit("cr-2", "2026-09", D("1.00"), "USD", [], d("2026-10-05"))


def test_credits_that_arrived_before_the_schedule_are_deducted_when_it_is_created():
    from services.payments.domain.ledger import CreditNote

    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    s.adopt_credits([CreditNote("n1", "early", "2026-08", D("1000.00"), "CNY", (), d("2026-08-31"))], d("2026-09-01"))
    assert by_key(s, "signing").outstanding == D("369370.37")


# ---------------------------------------------------------------------- credits lowered by a correction

def one_tranche_schedule() -> PaymentSchedule:
    return PaymentSchedule.from_terms(software_development_terms(total_amount="1000.00", tranches=[
        {"key": "all", "label": "全款", "percent": "100", "amount": "1000.00", "trigger": {"kind": "on_signing"},
         "due": {"days": 30}}], milestones=[]), d("2026-09-01"), d("2026-09-01"))


def test_a_lowered_credit_comes_off_what_is_carried_forward_first_then_is_owed():
    s = one_tranche_schedule()
    only = by_key(s, "all")
    s.record_payment(only.id, D("800.00"), d("2026-09-05"), "r1", "fin")
    s.receive_credit("cr-1", "2026-09", D("500.00"), "CNY", ["csat"], d("2026-10-05"))   # 200 deducted, 300 carried
    drain(s)
    w = s.withdraw_credit("cr-2", "2026-09", D("200.00"), "CNY", d("2026-10-20"), replaces="cr-1")
    assert (w.from_carried_forward, w.released, w.debited, w.owed) == (D("200.00"), 0, 0, 0)
    assert (only.credited, s.carried_forward(), s.credit_owed()) == (D("200.00"), D("100.00"), 0)
    (event,) = drain(s)
    assert (event.event_type, event.credit_id, event.replaces, event.amount, event.from_carried_forward,
            event.released) == ("credit.withdrawn", "cr-2", "cr-1", D("200.00"), D("200.00"), [])
    # Lowered again by 250.00: the last 100.00 carried, then 150.00 that a paid tranche already took.
    # Nothing is left unpaid and uninvoiced to carry it: the client owes it, and the event says so.
    w = s.withdraw_credit("cr-3", "2026-09", D("250.00"), "CNY", d("2026-10-21"), replaces="cr-2")
    assert (w.from_carried_forward, w.released, w.debited, w.owed) == (D("100.00"), 0, 0, D("150.00"))
    assert (only.credited, only.status, s.carried_forward(), s.credit_owed()) == (
        D("200.00"), "settled", 0, D("150.00"))
    (event,) = drain(s)
    assert (event.debited, event.owed) == (0, D("150.00"))
    with pytest.raises(Invalid):   # more than the month still credits (500 - 200 - 250 = 50)
        s.withdraw_credit("cr-4", "2026-09", D("50.01"), "CNY", d("2026-10-22"))
    with pytest.raises(Invalid):
        s.withdraw_credit("cr-5", "2026-09", D("1.00"), "USD", d("2026-10-22"))


def test_a_lowered_credit_is_released_from_unpaid_tranches_newest_note_first():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    signing = by_key(s, "signing")
    s.receive_credit("cr-1", "2026-08", D("5000.00"), "CNY", [], d("2026-09-05"))
    s.receive_credit("cr-2", "2026-08", D("3000.00"), "CNY", [], d("2026-09-06"))   # a raising correction
    drain(s)
    w = s.withdraw_credit("cr-3", "2026-08", D("2000.00"), "CNY", d("2026-09-08"), replaces="cr-2")
    assert (w.from_carried_forward, w.released, w.debited, w.owed) == (0, D("2000.00"), 0, 0)
    assert (signing.credited, signing.outstanding) == (D("6000.00"), D("364370.37"))
    first, second = s.credit_notes
    assert (first.net, second.net, second.remaining) == (D("5000.00"), D("1000.00"), 0)
    # cr-2's deduction is reversed whole and its kept 1,000.00 deducted again from the withdrawal's day.
    assert [(a.amount, a.applied_on, a.reversed_on) for a in second.applications] == [
        (D("3000.00"), d("2026-09-06"), d("2026-09-08")), (D("1000.00"), d("2026-09-08"), None)]
    (event,) = drain(s)
    assert [(r.tranche_key, r.amount, r.outstanding, r.status) for r in event.released] == [
        ("signing", D("2000.00"), D("364370.37"), "due")]
    # Lowered by 5,000.00 more: cr-2's last 1,000.00, then 4,000.00 of cr-1.
    s.withdraw_credit("cr-4", "2026-08", D("5000.00"), "CNY", d("2026-09-09"), replaces="cr-3")
    assert (signing.credited, first.net, second.net, s.carried_forward()) == (D("1000.00"), D("1000.00"), 0, 0)


def test_a_tranche_settled_by_credit_alone_owes_again_when_it_is_released():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    signing, requirements = by_key(s, "signing"), by_key(s, "requirements")
    s.receive_credit("cr-1", "2026-08", D("400000.00"), "CNY", [], d("2026-09-05"))
    assert (signing.status, requirements.credited) == ("settled", D("29629.63"))
    # The latest deduction (requirements) is released first, then part of signing's.
    s.withdraw_credit("cr-2", "2026-08", D("50000.00"), "CNY", d("2026-09-08"))
    assert (requirements.credited, requirements.status) == (0, "pending")
    assert (signing.credited, signing.outstanding, signing.status, signing.settled_on) == (
        D("350000.00"), D("20370.37"), "due", None)


def test_credit_on_a_paid_or_invoiced_tranche_is_carried_as_a_debit_to_the_next_unpaid_one():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    signing, requirements = by_key(s, "signing"), by_key(s, "requirements")
    s.receive_credit("cr-1", "2026-08", D("5000.00"), "CNY", [], d("2026-09-05"))
    s.issue_invoice(signing.id, "INV-2026-000001", d("2026-09-06"), "fin")   # for 365,370.37
    drain(s)
    w = s.withdraw_credit("cr-2", "2026-08", D("2000.00"), "CNY", d("2026-09-08"), replaces="cr-1")
    assert (w.from_carried_forward, w.released, w.debited, w.owed) == (0, 0, D("2000.00"), 0)
    assert (signing.credited, signing.outstanding) == (D("5000.00"), D("365370.37"))   # as invoiced
    assert (requirements.credited, requirements.outstanding) == (D("-2000.00"), D("372370.37"))
    withdrawn, debited = drain(s)
    assert (withdrawn.event_type, withdrawn.debited, withdrawn.owed) == ("credit.withdrawn", D("2000.00"), 0)
    assert (debited.event_type, debited.credit_id, debited.tranche_key, debited.amount, debited.outstanding) == (
        "credit.debited", "cr-1", "requirements", D("2000.00"), D("372370.37"))
    assert s.outstanding() == D(TOTAL) - D("3000.00")
    # An amendment leaves requirements as it was: it is kept, with its debit.
    s.rebaseline(amended_terms(), d("2026-09-10"), d("2026-09-10"))
    assert (by_key(s, "requirements").credited, s.credit_owed()) == (D("-2000.00"), 0)
    assert s.outstanding() == D("1334567.89") - D("3000.00")


def test_a_debit_on_a_tranche_cancelled_by_termination_stays_owed_on_the_schedule():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    signing = by_key(s, "signing")
    s.receive_credit("cr-1", "2026-08", D("5000.00"), "CNY", [], d("2026-09-05"))
    s.record_payment(signing.id, D("1000.00"), d("2026-09-06"), "r1", "fin")
    s.withdraw_credit("cr-2", "2026-08", D("2000.00"), "CNY", d("2026-09-08"))
    assert by_key(s, "requirements").credited == D("-2000.00")
    s.terminate(d("2026-09-10"), at(d("2026-09-10")))          # requirements, final, retention cancelled
    assert (s.credit_owed(), s.carried_forward(), signing.credited) == (D("2000.00"), 0, D("5000.00"))


def test_a_correction_is_applied_once():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    s.receive_credit("cr-1", "2026-08", D("5000.00"), "CNY", [], d("2026-09-05"))
    assert s.withdraw_credit("cr-2", "2026-08", D("2000.00"), "CNY", d("2026-09-08")) is not None
    drain(s)
    assert s.withdraw_credit("cr-2", "2026-08", D("2000.00"), "CNY", d("2026-09-09")) is None
    assert s.withdraw_credit("cr-1", "2026-08", D("1000.00"), "CNY", d("2026-09-09")) is None   # a credit's id
    assert s.receive_credit("cr-2", "2026-08", D("1000.00"), "CNY", [], d("2026-09-09")) is None
    assert (by_key(s, "signing").credited, len(s.credit_withdrawals), s.events) == (D("3000.00"), 1, [])


# ---------------------------------------------------------------------- amending an overdue tranche

def demo_terms(version: int = 1, contract_id: str = "c-demo-1", total: str = "1286000.00", **amounts) -> ContractTerms:
    """The demo's software-development contract: ¥1,286,000.00 paid 30/30/35/5, 0.05 %/day capped at 5 %.
    An amendment passes its new total and the amounts it changes (the others as signed)."""
    written = {"signing": "385800.00", "requirements": "385800.00", "acceptance": "450100.00",
               "retention": "64300.00", **amounts}
    working = {"days": 15, "unit": "working_days"}
    tranches = [
        {"key": "signing", "label": "首付款", "percent": "30", "trigger": {"kind": "on_signing"},
         "due": {"days": 10, "unit": "working_days"}},
        {"key": "requirements", "label": "需求确认款", "percent": "30",
         "trigger": {"kind": "milestone", "milestone": "requirements"}, "due": working},
        {"key": "acceptance", "label": "验收款", "percent": "35",
         "trigger": {"kind": "milestone", "milestone": "final_acceptance"}, "due": working},
        {"key": "retention", "label": "质保金", "percent": "5", "is_retention": True,
         "trigger": {"kind": "after_tranche", "tranche": "acceptance"}, "due": working}]
    return software_development_terms(
        version=version, contract_id=contract_id, total_amount=total,
        tranches=[{**t, "amount": written[t["key"]]} for t in tranches],
        late_payment={"daily_rate": "0.0005", "cap_share": "0.05"},
        milestones=[{"key": "requirements", "label": "需求规格说明书确认", "due_date": "2026-02-27"},
                    {"key": "final_acceptance", "label": "最终验收", "due_date": "2026-09-30"}])


def overdue_requirements() -> PaymentSchedule:
    """Signing paid; requirements accepted on 1 September, due 21 September, unpaid: on 23 November the
    scheduler has marked it overdue and announced its late fees up to that day."""
    s = PaymentSchedule.from_terms(demo_terms(), d("2026-09-01"), d("2026-09-01"))
    s.record_payment(by_key(s, "signing").id, D("385800.00"), d("2026-09-10"), "BOC-0910", "fin")
    accept(s, "requirements", d("2026-09-01"))
    assert by_key(s, "requirements").due_date == d("2026-09-21")
    s.advance_to(d("2026-11-23"))
    s.book_late_fees(d("2026-11-23"))
    drain(s)
    return s


def test_an_amendment_keeps_an_overdue_tranche_it_leaves_unchanged_and_its_late_fees_count_once():
    s = overdue_requirements()
    requirements = by_key(s, "requirements")
    assert s.rebaseline(demo_terms(2, total="1386000.00", acceptance="550100.00"), d("2026-11-23"), d("2026-11-23"))
    assert by_key(s, "requirements") is requirements
    assert (requirements.status, requirements.version, requirements.late_fees_through) == (
        "overdue", 1, d("2026-11-23"))
    # Acceptance changed; the retention follows it, so it is planned again too.
    assert [t.key for t in s.history()] == ["acceptance", "retention"]
    assert {t.key: t.amount for t in s.active_tranches()} == {
        "signing": D("385800.00"), "requirements": D("385800.00"), "acceptance": D("550100.00"),
        "retention": D("64300.00")}
    (rebaselined,) = drain(s)                                  # no second payment.overdue
    assert rebaselined.kept == ["signing", "requirements"]
    fees = s.late_fees(d("2026-11-23"))
    assert {x.tranche_id for x in fees.days} == {requirements.id}
    assert (fees.days[0].day, fees.days[-1].day, len(fees.days)) == (d("2026-09-22"), d("2026-11-23"), 63)
    assert fees.total == D("12152.70") == 63 * D("192.90")


def test_an_overdue_tranche_an_amendment_changes_hands_over_its_late_fee_days_and_its_replacement_is_overdue():
    s = overdue_requirements()
    old = by_key(s, "requirements")
    s.rebaseline(demo_terms(2, requirements="335800.00", acceptance="500100.00"), d("2026-11-23"), d("2026-11-23"))
    new = by_key(s, "requirements")
    assert new.id != old.id and (old.status, old.closed_on) == ("superseded", d("2026-11-23"))
    # Same trigger and due date, already past: overdue at once, announced once.
    assert (new.due_date, new.status, new.late_fees_from) == (d("2026-09-21"), "overdue", d("2026-11-24"))
    rebaselined, due, overdue = drain(s)
    assert (rebaselined.event_type, due.event_type, due.tranche_id) == (
        "payment_schedule.rebaselined", "payment.due", new.id)
    assert (overdue.event_type, overdue.tranche_id, overdue.amount, overdue.overdue_since) == (
        "payment.overdue", new.id, D("335800.00"), d("2026-09-22"))
    assert s.advance_to(d("2026-11-24")) == []
    # The old tranche keeps its days up to the amendment day (owed at its start); the new one follows on.
    fees = s.late_fees(d("2026-11-25"))
    old_days = fees.for_tranche(old.id)
    assert (old_days[0].day, old_days[-1].day, len(old_days)) == (d("2026-09-22"), d("2026-11-23"), 63)
    assert [(x.day, x.fee) for x in fees.for_tranche(new.id)] == [(d("2026-11-24"), D("167.90")),
                                                                  (d("2026-11-25"), D("167.90"))]
    assert len({x.day for x in fees.days}) == len(fees.days)   # never the same day twice
    assert fees.total == D("12152.70") + D("335.80")
    # The scheduler announces only the new tranche's days; the old ones were announced already.
    s.book_late_fees(d("2026-11-24"))
    (fee,) = drain(s)
    assert (fee.tranche_id, fee.from_day, fee.through_day, fee.amount) == (
        new.id, d("2026-11-24"), d("2026-11-24"), D("167.90"))


# ---------------------------------------------------------------------- termination

def test_termination_cancels_what_is_not_due_and_keeps_what_is():
    s = PaymentSchedule.from_terms(software_development_terms(), d("2026-09-01"), d("2026-09-01"))
    accept(s, "requirements_confirmed", d("2026-09-18"))
    s.receive_credit("cr", "2026-09", D("500000.00"), "CNY", [], d("2026-09-19"))
    # The credit went to signing (370,370.37) then requirements (129,629.63).
    assert by_key(s, "requirements").credited == D("129629.63")
    cancelled = s.terminate(d("2026-09-25"), at(d("2026-09-25")))
    assert sorted(t.key for t in cancelled) == ["final", "retention"]
    assert [(t.key, t.status) for t in s.active_tranches()] == [("signing", "settled"), ("requirements", "due")]
    assert s.milestone("final_acceptance").status == "withdrawn"
    assert s.terminate(d("2026-09-26"), at(d("2026-09-26"))) == []
    assert s.rebaseline(amended_terms(), d("2026-09-27"), d("2026-09-27")) is False
    with pytest.raises(Conflict):
        s.reach_milestone("final_acceptance", "pm", at(d("2026-09-26")), d("2026-09-26"))
