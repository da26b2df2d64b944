"""Change requests: applying a proposed change, the refusals, the approval chain, the response time."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from services.contracts.domain.change_approval import DEFAULT_CHANGE_POLICY, ChangeReview, price_change
from services.contracts.domain.change_requests import (ChangeStatus, ProposedChange, apply_change, assessment_due, current_amounts,
                                                       ensure_allowed, find_overlap, percents_for)
from shared.money import allocate_percent as allocate
from shared.business_calendar import BusinessCalendar
from shared.errors import Conflict, Forbidden, Invalid

UTC = dt.timezone.utc
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _variables() -> dict:
    due = {"days": 15, "unit": "working_days"}
    return {
        "total_price": {"amount": "1000000.00", "currency": "CNY"},
        "effective_date": "2026-03-01", "end_date": "2027-02-28",
        "tranches": [
            {"key": "signing", "label": "On signing", "percent": "30", "trigger": {"kind": "on_signing"}, "due": due},
            {"key": "requirements", "label": "Requirements confirmed", "percent": "30",
             "trigger": {"kind": "milestone", "milestone": "req"}, "due": due},
            {"key": "acceptance", "label": "Acceptance", "percent": "30",
             "trigger": {"kind": "milestone", "milestone": "uat"}, "due": due},
            {"key": "retention", "label": "Retention", "percent": "10", "is_retention": True,
             "trigger": {"kind": "after_tranche", "tranche": "acceptance", "days": 365}, "due": due},
        ],
        "milestones": [{"key": "req", "label": "Requirements", "due_date": "2026-04-30"},
                       {"key": "uat", "label": "UAT", "due_date": "2026-09-30"}],
        "sla_metrics": [{"key": "p1_response", "kind": "first_response", "label": "P1", "target": "30"}],
        "project_name": "Orders platform",
    }


def _amounts(variables: dict) -> dict[str, Decimal]:
    return current_amounts(variables)


def test_a_price_increase_goes_to_the_unpaid_tranches_and_adds_up_to_the_fen():
    change = ProposedChange(total_price=Decimal("1234567.89"), tranches=[
        {"key": "acceptance", "amount": "423456.79"}, {"key": "retention", "amount": "211111.10"}])
    amended = apply_change(_variables(), {}, change, {"signing": "paid", "requirements": "invoiced"})
    amounts = _amounts(amended.variables)
    assert amounts == {"signing": Decimal("300000.00"), "requirements": Decimal("300000.00"),
                       "acceptance": Decimal("423456.79"), "retention": Decimal("211111.10")}
    assert sum(amounts.values()) == Decimal("1234567.89")
    assert sum(Decimal(t["percent"]) for t in amended.variables["tranches"]) == 100
    assert amended.delta["total_price"] == {"from": "1000000.00", "to": "1234567.89", "delta": "234567.89"}


def test_a_paid_or_invoiced_tranche_cannot_change_or_go():
    change = ProposedChange(tranches=[{"key": "signing", "amount": "200000.00"},
                                      {"key": "requirements", "action": "remove"}])
    with pytest.raises(Invalid) as caught:
        apply_change(_variables(), {}, change, {"signing": "paid", "requirements": "invoiced"})
    errors = caught.value.errors
    assert [e["pointer"] for e in errors] == ["/changes/tranches/0", "/changes/tranches/1"]
    assert "already paid" in errors[0]["detail"] and "already invoiced" in errors[1]["detail"]


def test_a_total_that_no_longer_adds_up_is_refused():
    change = ProposedChange(total_price=Decimal("1100000.00"), tranches=[{"key": "acceptance", "amount": "350000.00"}])
    with pytest.raises(Invalid) as caught:
        apply_change(_variables(), {}, change, {})
    assert caught.value.errors == [{"pointer": "/changes/tranches",
                                    "detail": "the tranche amounts add up to 1050000.00, but the total is 1100000.00"}]


def test_dates_in_the_wrong_order_are_refused():
    change = ProposedChange(dates={"end_date": "2026-02-01", "milestones": {"uat": "2027-06-01", "nope": "2026-05-01"}})
    with pytest.raises(Invalid) as caught:
        apply_change(_variables(), {}, change, {})
    pointers = {e["pointer"] for e in caught.value.errors}
    assert pointers == {"/changes/dates/end_date", "/changes/dates/milestones/uat", "/changes/dates/milestones/nope"}


def test_new_dates_sla_targets_clauses_and_variables_are_applied_and_recorded():
    change = ProposedChange(dates={"end_date": "2027-06-30", "milestones": {"uat": "2026-11-30"}},
                            sla_targets={"p1_response": Decimal("20")},
                            clauses={"ip.ownership": {"position": "vendor_background_licence"}},
                            variables={"project_name": "Orders platform, phase 2"})
    amended = apply_change(_variables(), {}, change, {})
    assert amended.variables["end_date"] == "2027-06-30"
    assert {m["key"]: m["due_date"] for m in amended.variables["milestones"]}["uat"] == "2026-11-30"
    assert amended.variables["sla_metrics"][0]["target"] == "20"
    # the amended positions are in the form drafting reads (a library position by its key), issue 17
    assert amended.positions["ip.ownership"] == "vendor_background_licence"
    assert amended.delta["clauses"]["ip.ownership"] == {"from": {"position": "standard"},
                                                        "to": {"position": "vendor_background_licence"}}
    assert amended.delta["sla_targets"] == {"p1_response": {"from": "30", "to": "20"}}
    assert amended.delta["variables"]["project_name"]["to"] == "Orders platform, phase 2"
    assert _variables()["end_date"] == "2027-02-28"        # the base is never modified in place


def test_an_added_tranche_needs_its_terms_and_a_matching_total():
    with pytest.raises(ValueError):
        ProposedChange(tranches=[{"key": "extra", "action": "add", "amount": "1000.00"}])
    change = ProposedChange(total_price=Decimal("1050000.00"), tranches=[{
        "key": "extra", "action": "add", "label": "Extra reports", "amount": "50000.00",
        "trigger": {"kind": "milestone", "milestone": "uat"}, "due": {"days": 30, "unit": "calendar_days"}}])
    amounts = _amounts(apply_change(_variables(), {}, change, {"signing": "paid"}).variables)
    assert amounts["extra"] == Decimal("50000.00") and amounts["signing"] == Decimal("300000.00")


def test_unknown_variables_and_reserved_names_are_refused():
    with pytest.raises(Invalid) as caught:
        apply_change(_variables(), {}, ProposedChange(variables={"nope": 1, "tranches": []}), {})
    assert {e["pointer"] for e in caught.value.errors} == {"/changes/variables/nope", "/changes/variables/tranches"}


@given(st.lists(st.integers(min_value=1, max_value=10**11), min_size=1, max_size=12))
def test_derived_percentages_give_back_exactly_the_agreed_amounts(fen):
    amounts = [Decimal(f) / 100 for f in fen]
    total = sum(amounts, Decimal(0))
    percents = percents_for(amounts, total)
    assert sum(percents, Decimal(0)) == 100
    assert allocate(total, percents) == amounts


def test_overlapping_requests_are_found_by_what_they_write():
    price = ProposedChange(total_price=Decimal("1100000.00"), tranches=[{"key": "acceptance", "amount": "400000.00"}])
    dates = ProposedChange(dates={"end_date": "2027-06-30"})
    also_price = ProposedChange(tranches=[{"key": "acceptance", "label": "Final acceptance"}])
    assert find_overlap(price, dates) == set()
    assert find_overlap(price, also_price) == {"tranches/acceptance"}


def test_state_machine_names_the_allowed_commands():
    ensure_allowed("submit", ChangeStatus.DRAFT)
    with pytest.raises(Conflict) as caught:
        ensure_allowed("implement", ChangeStatus.SUBMITTED)
    assert caught.value.extra["allowed_transitions"] == ["assess", "reject", "withdraw"]
    with pytest.raises(Conflict):
        ensure_allowed("withdraw", ChangeStatus.IMPLEMENTED)


def test_the_chain_follows_kind_and_cost_and_keeps_four_eyes():
    at = dt.datetime(2026, 5, 1, tzinfo=UTC)
    small_scope = ChangeReview.open(DEFAULT_CHANGE_POLICY, {"scope"}, Decimal("5000.00"))
    assert [s["key"] for s in small_scope.steps] == ["pm"]
    big_price = ChangeReview.open(DEFAULT_CHANGE_POLICY, {"price"}, Decimal("150000.00"))
    assert [s["key"] for s in big_price.steps] == ["pm", "legal", "finance"]
    with pytest.raises(Forbidden):
        big_price.approve("alice", frozenset({"pm"}), raised_by="alice", at=at, comment=None)
    with pytest.raises(Forbidden):   # legal cannot take the PM's step, steps go in order
        big_price.approve("bob", frozenset({"legal"}), raised_by="alice", at=at, comment=None)
    assert big_price.approve("pat", frozenset({"pm"}), "alice", at, "ok") is False
    assert big_price.approve("lee", frozenset({"legal"}), "alice", at, None) is False
    assert big_price.approve("fay", frozenset({"finance"}), "alice", at, None) is True
    assert ChangeReview.from_dict(big_price.to_dict()).pending == []


def test_each_step_of_a_change_has_its_own_person_and_admin_needs_the_steps_role():
    at = dt.datetime(2026, 5, 1, tzinfo=UTC)
    review = ChangeReview.open(DEFAULT_CHANGE_POLICY, {"price"}, Decimal("150000.00"))
    with pytest.raises(Forbidden, match="administrator"):
        review.approve("admin-1", frozenset({"admin"}), "alice", at, None)
    review.approve("wu", frozenset({"pm", "legal", "finance"}), "alice", at, None)
    with pytest.raises(Forbidden, match="Separation of duties"):
        review.approve("wu", frozenset({"pm", "legal", "finance"}), "alice", at, None)
    with pytest.raises(Forbidden, match="Separation of duties"):
        review.reject("wu", frozenset({"pm", "legal", "finance"}), "alice", at, "no")
    review.approve("lee", frozenset({"legal", "admin"}), "alice", at, None)
    assert review.approve("fay", frozenset({"finance"}), "alice", at, None) is True
    assert [d["by"] for d in review.decisions] == ["wu", "lee", "fay"]


BLOCKER = {"id": "dispatch_reclassification_risk:subcontracting", "code": "dispatch_reclassification_risk",
           "clause": "subcontracting", "message": "..."}


def test_an_amendment_with_a_blocking_finding_waits_for_an_override_with_a_reason():
    at = dt.datetime(2026, 5, 1, tzinfo=UTC)
    review = ChangeReview.open(DEFAULT_CHANGE_POLICY, {"scope"}, Decimal(0), [BLOCKER], ["approver"])
    assert review.approve("pat", frozenset({"pm"}), "alice", at, None) is False      # steps done, finding open
    with pytest.raises(Conflict, match="risk overrides"):
        review.approve("pia", frozenset({"pm"}), "alice", at, None)
    with pytest.raises(Forbidden, match="Four eyes"):
        review.override("alice", frozenset({"approver"}), "alice", at, BLOCKER["id"], "ok")
    with pytest.raises(Forbidden):
        review.override("pat", frozenset({"pm"}), "alice", at, BLOCKER["id"], "ok")
    with pytest.raises(Invalid) as blank:
        review.override("chen", frozenset({"approver"}), "alice", at, BLOCKER["id"], " \u3000 ")
    assert [e["pointer"] for e in blank.value.errors] == ["/reason"]
    assert review.override("chen", frozenset({"approver"}), "alice", at, BLOCKER["id"], "另行修订措辞") is True
    assert ChangeReview.from_dict(review.to_dict()) == review


@pytest.mark.parametrize("before, after, change", [
    ({"total_amount": "1000000.00"}, {"total_amount": "1150000.00"}, "150000.00"),
    ({"total_amount": "1000000.00"}, {"total_amount": "900000.00"}, "-100000.00"),
    # a monthly fee raised by 10,000 over a twelve-month term, the total left as it was
    ({"total_amount": "2330470.00", "monthly_fee": "186437.60"},
     {"total_amount": "2330470.00", "monthly_fee": "196437.60"}, "120000.00"),
    ({"total_amount": "1000000.00"}, {"total_amount": "1000000.00"}, "0.00"),
])
def test_the_price_change_is_computed_from_the_terms_before_and_after(before, after, change):
    term = {"effective_date": "2026-03-01", "end_date": "2027-02-28"}
    assert price_change({**term, **before}, {**term, **after}) == Decimal(change)
    steps = ChangeReview.open(DEFAULT_CHANGE_POLICY, {"scope"}, price_change({**term, **before}, {**term, **after}))
    assert ("finance" in [s["key"] for s in steps.steps]) == (abs(Decimal(change)) > Decimal("100000.00"))


@pytest.mark.parametrize("submitted, days, due", [
    # Wed before Mid-Autumn (Fri 25 Sep 2026 off): Thu 24, Mon 28, Tue 29 -> end of Tue 29
    (dt.datetime(2026, 9, 23, 10, 0, tzinfo=SHANGHAI), 3, dt.datetime(2026, 9, 30, 0, 0, tzinfo=SHANGHAI)),
    # Fri 18 Sep: Sunday 20 Sep is an adjusted working day (调休), so one working day ends with it
    (dt.datetime(2026, 9, 18, 17, 0, tzinfo=SHANGHAI), 1, dt.datetime(2026, 9, 21, 0, 0, tzinfo=SHANGHAI)),
    # Wed 30 Sep: National Day 1-7 Oct off; Thu 8, Fri 9 -> end of Fri 9
    (dt.datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI), 2, dt.datetime(2026, 10, 10, 0, 0, tzinfo=SHANGHAI)),
    # Fri 9 Oct: Saturday 10 Oct is worked
    (dt.datetime(2026, 10, 9, 9, 0, tzinfo=SHANGHAI), 1, dt.datetime(2026, 10, 11, 0, 0, tzinfo=SHANGHAI)),
    # submitted late on Friday evening UTC, which is already Saturday in Shanghai
    (dt.datetime(2026, 10, 16, 17, 0, tzinfo=UTC), 1, dt.datetime(2026, 10, 20, 0, 0, tzinfo=SHANGHAI)),
])
def test_assessment_is_due_after_n_working_days_on_the_mainland_calendar(submitted, days, due):
    assert assessment_due(submitted, days, "working_days", BusinessCalendar.office_hours()) == due
    assert assessment_due(submitted, days, "working_days", BusinessCalendar.office_hours()).tzinfo == UTC


def test_assessment_in_calendar_days_ignores_holidays():
    submitted = dt.datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)
    assert assessment_due(submitted, 2, "calendar_days", BusinessCalendar.office_hours()) == \
        dt.datetime(2026, 10, 3, 0, 0, tzinfo=SHANGHAI)


# --- the amendment document ----------------------------------------------------------------------

def _doc(language: str, articles: list[tuple[str, str, str]], version: int):
    from services.contracts.domain.document import Article, ContractDocument, Paragraph
    return ContractDocument(language=language, title="T", number="SD-1", version=version,
                            articles=tuple(Article(k, h, (Paragraph(t),)) for k, h, t in articles))


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_amendment_lists_each_changed_article_and_the_price_in_figures_and_words(language):
    from services.contracts.domain.amendments import AmendmentFacts, amendment_document
    from services.contracts.domain.amount_words import parse_english_amount_words, parse_rmb_uppercase
    old = _doc(language, [("parties", "P", "unchanged words"), ("price", "Price", "old price"), ("ip", "IP", "gone")], 2)
    new = _doc(language, [("parties", "P", "unchanged words"), ("price", "Price", "new price"), ("extra", "Extra", "added")], 3)
    delta = {"total_price": {"from": "1000000.00", "to": "1234567.89", "delta": "234567.89"}}
    facts = AmendmentFacts(number=1, change_request="CR-1", contract_number="SD-1", contract_title="软件开发外包合同",
                           base_version=2, signed_on="2026-03-01")
    doc = amendment_document(old, new, delta, facts)
    text = "\n".join(b.text for a in doc.articles for b in a.blocks)
    if language == "zh-CN":
        assert doc.title == "《软件开发外包合同》补充协议（第1号）"
        assert "原合同第二条（Price）修改为：\nnew price" in text
        assert "原合同增加第三条（Extra）" in text and "删除原合同第三条（IP）" in text
        assert "人民币1,234,567.89元（大写：人民币壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分）" in text
        assert "增加人民币234,567.89元" in text
        words = text.split("大写：")[2].split("）")[0]
        assert parse_rmb_uppercase(words) == Decimal("1234567.89")
    else:
        assert doc.title == "Amendment No. 1 to the 软件开发外包合同"
        assert "Article 2 (Price) of the Agreement is replaced by the following:\nnew price" in text
        assert "Article 3 (IP) of the Agreement is deleted." in text
        assert "an increase of CNY 234,567.89" in text
        words = text.split("CNY 1,234,567.89 (")[1].split(")")[0]
        assert parse_english_amount_words(words) == Decimal("1234567.89")
    assert "unchanged words" not in text                 # unchanged articles are not repeated


def test_article_labels_count_in_chinese():
    from services.contracts.domain.amendments import article_label
    assert [article_label(n, "zh-CN") for n in (1, 10, 11, 20, 105)] == ["第一条", "第十条", "第十一条", "第二十条",
                                                                       "第一百零五条"]
