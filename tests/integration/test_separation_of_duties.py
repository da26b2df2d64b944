"""Separation of duties (issues 16 and 17), over HTTP on the real database.

One person holding every role used to decide every step. Now each step of a round is decided by
a different person, the drafter and the submitter decide none, admin administers but decides a
step only with the step's role, a change request's raiser neither assesses nor approves it, its
finance step follows the price change the amendment makes (not a declared cost), an amended
contract with high-severity findings needs an override with a reason as a draft does, and an
override's reason cannot be blank. Payments keeps credits apart by organisation.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from services.contracts.adapters.library_files import load_library
from services.payments.service_layer import create_schedule, receive_credit, withdraw_credit
from shared.errors import Conflict
from shared.events.sla import SlaCreditAssessed
from tests.helpers import auth
from tests.integration.test_change_requests import signed_contract
from tests.integration.test_contracts_lifecycle import assert_problem, ok
from tests.unit.test_payments_domain import software_development_terms

DRAFTER = auth("legal", sub="legal-author")
EVERYTHING = auth("legal", "finance", "approver", "pm", sub="all-roles-wu")   # one person, every role
FINANCE, APPROVER = auth("finance", sub="finance-wang"), auth("approver", sub="approver-chen")
ADMIN, LEGAL_ADMIN = auth("admin", sub="admin-1"), auth("admin", "legal", sub="admin-legal-he")
RAISER, PM, LEGAL = auth("pm", sub="pm-sun"), auth("pm", sub="pm-qian"), auth("legal", sub="legal-reviewer")
VIEWER = auth("viewer", sub="viewer-1")
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _draft(contracts, number: str) -> str:
    variables = json.loads(json.dumps(load_library().template("software_development").sample_variables, default=str))
    variables["contract_number"] = number
    drafted = contracts.post("/v1/contracts", headers=DRAFTER, json={
        "template": "software_development", "language": "zh-CN", "variables": variables})
    assert drafted.status_code == 201, drafted.text
    return drafted.json()["id"]


def _act(contracts, cid: str, command: str, headers, **body):
    return contracts.post(f"/v1/contracts/{cid}/{command}", headers=headers, json=body or None)


def _cr(contracts, rid: str, command: str, headers, **body):
    return contracts.post(f"/v1/change-requests/{rid}/{command}", headers=headers, json=body or None)


def test_each_step_of_a_round_is_decided_by_another_person(start_service):
    contracts = start_service("contracts")
    cid = _draft(contracts, "SOD-1")
    ok(_act(contracts, cid, "submit", DRAFTER))
    assert ok(_act(contracts, cid, "approve", EVERYTHING))["status"] == "in_review"      # legal
    refused = assert_problem(_act(contracts, cid, "approve", EVERYTHING, step="finance"), 403)
    assert "legal" in refused["detail"] and refused["decided_step"] == "legal"
    assert_problem(_act(contracts, cid, "reject", EVERYTHING, comment="no"), 403)         # rejecting is deciding
    assert ok(_act(contracts, cid, "approve", FINANCE))["status"] == "approved"
    deciders = [d["by"] for d in ok(contracts.get(f"/v1/contracts/{cid}/lifecycle", headers=VIEWER))["decisions"]]
    assert deciders == ["all-roles-wu", "finance-wang"]


def test_the_submitter_decides_no_step_of_what_they_submitted(start_service):
    contracts = start_service("contracts")
    cid = _draft(contracts, "SOD-2")
    ok(_act(contracts, cid, "submit", LEGAL))                                 # not an author, but the submitter
    assert "submit" in assert_problem(_act(contracts, cid, "approve", LEGAL), 403)["detail"]
    assert_problem(_act(contracts, cid, "reject", LEGAL, comment="no"), 403)
    assert_problem(_act(contracts, cid, "approve", DRAFTER), 403)             # nor the drafter
    assert ok(_act(contracts, cid, "approve", auth("legal", sub="legal-zhou")))["status"] == "in_review"


def test_admin_administers_but_decides_a_step_only_with_its_role(start_service):
    contracts = start_service("contracts")
    ok(contracts.put("/v1/approval-policy", headers=ADMIN, json={"steps": [{"key": "legal", "roles": ["legal"]}]}))
    cid = _draft(contracts, "SOD-3")
    ok(_act(contracts, cid, "submit", DRAFTER))
    assert "admin" in assert_problem(_act(contracts, cid, "approve", ADMIN), 403)["detail"]
    assert_problem(_act(contracts, cid, "reject", ADMIN, comment="no"), 403)
    assert ok(_act(contracts, cid, "approve", LEGAL_ADMIN))["status"] == "approved"      # with the step's role


def test_an_override_reason_cannot_be_blank(start_service):
    contracts = start_service("contracts")
    cid = signed_contract(contracts, "zh-CN")
    rid = _dispatch_request(contracts, cid)
    finding = ok(contracts.get(f"/v1/change-requests/{rid}", headers=VIEWER))["review"]["blockers"][0]["id"]
    blank = assert_problem(_cr(contracts, rid, "override", APPROVER, finding=finding, reason=" \t\n "), 422)
    assert [e["pointer"] for e in blank["errors"]] == ["/reason"]
    both = assert_problem(_cr(contracts, rid, "override", APPROVER, finding="nope", reason="  "), 422)
    assert sorted(e["pointer"] for e in both["errors"]) == ["/finding", "/reason"]


def test_the_contract_override_reason_cannot_be_blank_either(start_service):
    from tests.integration.test_contracts_lifecycle import contract_document, seed
    contracts = start_service("contracts")
    cid = seed(contracts, documents=[contract_document("SOD-BLANK", 1, omit=("confidentiality",))])
    ok(_act(contracts, cid, "submit", auth("legal", sub="author-zhang")))
    blank = assert_problem(_act(contracts, cid, "override", APPROVER,
                                finding="required_clause_missing:confidentiality", reason="   "), 422)
    assert [e["pointer"] for e in blank["errors"]] == ["/reason"]


# --- change requests -------------------------------------------------------------------------------

def _raise(contracts, cid: str, changes: dict, kinds: list[str], headers=RAISER) -> str:
    raised = contracts.post(f"/v1/contracts/{cid}/change-requests", headers=headers, json={
        "title": "t", "description": "d", "reason": "r", "kinds": kinds, "changes": changes, "submit": True})
    assert raised.status_code == 201, raised.text
    return raised.json()["id"]


def _assess(contracts, rid: str, cost: str, headers=PM):
    return contracts.post(f"/v1/change-requests/{rid}/assess", headers=headers, json={
        "cost": cost, "schedule_days": 0, "risk": "low"})


DISPATCH = {"clauses": {"subcontracting": {"custom": {"zh-CN": "乙方人员由甲方直接管理，服从甲方安排。",
                                                       "en": "The vendor's personnel are under the client's direct "
                                                             "management."}}}}


def _dispatch_request(contracts, cid: str) -> str:
    rid = _raise(contracts, cid, DISPATCH, ["terms"])
    ok(_assess(contracts, rid, "0.00"))
    return rid


def test_the_raiser_neither_assesses_nor_approves_and_each_step_has_its_own_person(start_service):
    contracts = start_service("contracts")
    cid = signed_contract(contracts, "zh-CN")
    rid = _raise(contracts, cid, {"variables": {"project_name": "扩展版"}}, ["terms"], headers=EVERYTHING)
    assert_problem(_assess(contracts, rid, "0.00", headers=EVERYTHING), 403)
    assert ok(_assess(contracts, rid, "0.00"))["review"]["steps"] == [
        {"key": "pm", "roles": ["pm"]}, {"key": "legal", "roles": ["legal"]}]
    assert_problem(_cr(contracts, rid, "approve", EVERYTHING), 403)
    ok(_cr(contracts, rid, "approve", auth("pm", "legal", sub="pm-legal-lu")))              # the pm step
    assert_problem(_cr(contracts, rid, "approve", auth("pm", "legal", sub="pm-legal-lu")), 403)   # not legal too
    assert_problem(_cr(contracts, rid, "approve", ADMIN), 403)                              # admin is no approver
    assert ok(_cr(contracts, rid, "approve", LEGAL))["status"] == "approved"


PRICE_UP = {"total_price": "1486000.00", "tranches": [{"key": "acceptance", "amount": "650100.00"}]}


def test_the_finance_step_follows_the_price_change_not_the_declared_cost(start_service):
    contracts = start_service("contracts")
    cid = signed_contract(contracts, "zh-CN")
    priced = _raise(contracts, cid, PRICE_UP, ["scope"])
    review = ok(_assess(contracts, priced, "0.00"))["review"]           # declared nothing, the price moves 200,000
    assert [s["key"] for s in review["steps"]] == ["pm", "finance"]
    assert Decimal(review["price_change"]) == Decimal("200000.00")
    unpriced = _raise(contracts, cid, {"dates": {"end_date": "2027-12-31"}}, ["scope"])
    review = ok(_assess(contracts, unpriced, "900000.00"))["review"]   # declares a fortune, the price stays
    assert [s["key"] for s in review["steps"]] == ["pm"] and Decimal(review["price_change"]) == 0


def test_an_amendment_with_a_high_finding_needs_an_override_with_a_reason(start_service):
    contracts = start_service("contracts")
    cid = signed_contract(contracts, "zh-CN")
    rid = _dispatch_request(contracts, cid)
    review = ok(contracts.get(f"/v1/change-requests/{rid}", headers=VIEWER))["review"]
    finding, *others = [b["id"] for b in review["blockers"]]
    assert finding.startswith("dispatch_")
    ok(_cr(contracts, rid, "approve", PM))
    assert ok(_cr(contracts, rid, "approve", LEGAL))["status"] == "assessed"       # held by the finding
    assert_problem(contracts.post(f"/v1/change-requests/{rid}/implement", headers=LEGAL), 409)
    assert_problem(_cr(contracts, rid, "override", RAISER, finding=finding, reason="ok"), 403)
    assert_problem(_cr(contracts, rid, "override", LEGAL, finding=finding, reason="ok"), 403)   # not an override role
    for other in others:   # each blocking finding is overridden on its own
        ok(_cr(contracts, rid, "override", APPROVER, finding=other, reason="派驻人员由乙方自行管理，措辞将另行修订"))
    done = ok(_cr(contracts, rid, "override", APPROVER, finding=finding, reason="派驻人员由乙方自行管理，措辞将另行修订"))
    assert done["status"] == "approved"
    assert (done["review"]["overrides"][-1]["by"], done["review"]["overrides"][-1]["reason"]) == (
        "approver-chen", "派驻人员由乙方自行管理，措辞将另行修订")
    assert ok(contracts.post(f"/v1/change-requests/{rid}/implement", headers=LEGAL))["status"] == "implemented"


# --- payments: a contract id is qualified by its organisation --------------------------------------

def test_another_organisations_credit_for_the_same_contract_id_stays_out_of_the_schedule(start_service):
    payments = start_service("payments")
    uow = payments.app.state.runtime.uow
    now = dt.datetime(2026, 9, 1, 10, 0, tzinfo=SHANGHAI)
    terms = software_development_terms(contract_id="c-shared-id")

    def credit(org: str, credit_id: str, amount: Decimal = Decimal("5000.00"), **more) -> SlaCreditAssessed:
        return SlaCreditAssessed(contract_id="c-shared-id", org=org, period="2026-08", amount=amount,
                                 currency="CNY", metric_keys=["availability"], credit_id=credit_id, **more)

    receive_credit(uow(), credit("globex", "globex-cr-1"), now)        # before acme's schedule exists
    withdraw_credit(uow(), credit("globex", "globex-cr-2", replaces="globex-cr-1", amount=Decimal("1000.00"),
                                  previously_assessed=Decimal("5000.00"), revision=2), Decimal("4000.00"), now)
    receive_credit(uow(), credit(terms.org, "acme-cr-1"), now)
    schedule = create_schedule(uow(), terms, now.date(), now)
    assert [n.credit_id for n in schedule.credit_notes] == ["acme-cr-1"] and schedule.credit_withdrawals == []
    with pytest.raises(Conflict):                                      # and none attaches afterwards either
        receive_credit(uow(), credit("globex", "globex-cr-3"), now)
    view = ok(payments.get("/v1/payment-schedules/c-shared-id", headers=auth("viewer", org=terms.org)))
    assert [n["credit_id"] for n in view["credit_notes"]] == ["acme-cr-1"] and view["credit_withdrawals"] == []
    assert sum(Decimal(t["credited"]) for t in view["tranches"]) == Decimal("5000.00")
