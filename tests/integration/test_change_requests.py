"""Change control for real: contracts and payments on the real broker and database.

A contract drafted, approved and signed through the API; payments builds its schedule from
`contract.signed` and invoices the first tranche, which contracts learns from `invoice.issued`
and then refuses to change. Requests are raised, assessed, approved by the policy's chain (never
by whoever raised them), implemented into amended versions with their amendment and redline, and
`contract.amended` re-baselines payments. Two requests approved on one base: the disjoint one
applies on top, the overlapping one answers 409. The response-time timer runs on the service's
clock across National Day 2026 and its adjusted working Saturday.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import threading
import zipfile
from decimal import Decimal

import pytest
from docx import Document

from services.contracts.adapters.library_files import load_library
from services.contracts import views
from services.contracts.service_layer.change_requests import announce_overdue
from tests.helpers import auth, wait_until
from tests.integration.test_contracts_lifecycle import ContractsTopic, assert_problem, ok

PATIENCE = 60
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
AUTHOR, REVIEWER = auth("legal", sub="legal-author"), auth("legal", sub="legal-reviewer")
FINANCE = auth("finance", sub="finance-wang")
VENDOR = auth("vendor", sub="vendor-zhao", party="91440300MA5GK7P29H")   # the software development sample's vendor
RAISER, PM = auth("pm", sub="pm-sun"), auth("pm", sub="pm-qian")
VIEWER = auth("viewer", sub="viewer-1")


def signed_contract(contracts, language: str) -> str:
    """The software development sample drafted, approved (legal, then finance above 1m) and signed."""
    variables = json.loads(json.dumps(load_library().template("software_development").sample_variables, default=str))
    drafted = contracts.post("/v1/contracts", headers=AUTHOR,
                             json={"template": "software_development", "language": language, "variables": variables})
    assert drafted.status_code == 201, drafted.text
    cid = drafted.json()["id"]
    ok(contracts.post(f"/v1/contracts/{cid}/submit", headers=AUTHOR))
    ok(contracts.post(f"/v1/contracts/{cid}/approve", headers=REVIEWER))
    assert ok(contracts.post(f"/v1/contracts/{cid}/approve", headers=FINANCE))["status"] == "approved"
    ok(contracts.post(f"/v1/contracts/{cid}/request-signature", headers=AUTHOR))
    ok(contracts.post(f"/v1/contracts/{cid}/sign", headers=REVIEWER, json={"party": "client", "signatory": "陈立新"}))
    signed = ok(contracts.post(f"/v1/contracts/{cid}/sign", headers=VENDOR, json={"party": "vendor", "signatory": "周敏"}))
    assert signed["status"] in ("signed", "active")
    return cid


def raise_request(contracts, cid: str, changes: dict, kinds: list[str], title: str, headers=RAISER, submit=True):
    return contracts.post(f"/v1/contracts/{cid}/change-requests", headers=headers, json={
        "title": title, "description": f"{title}: details", "reason": "the client asked for it", "kinds": kinds,
        "changes": changes, "submit": submit})


def created(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def assess(contracts, request_id: str, cost: str) -> dict:
    return ok(contracts.post(f"/v1/change-requests/{request_id}/assess", headers=PM, json={
        "cost": cost, "schedule_days": 10, "risk": "medium", "affected_deliverables": ["orders module"]}))


PRICE_CHANGE = {"total_price": "1386000.00", "tranches": [{"key": "acceptance", "amount": "550100.00"}],
                "dates": {"milestones": {"go_live": "2026-09-30"}}}
END_DATE_CHANGE = {"dates": {"end_date": "2027-12-31"}}
OVERLAPPING = {"tranches": [{"key": "acceptance", "label": "终验款"}]}


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_from_request_to_amendment_with_payments_listening(start_service, broker, topic_prefix, language):
    contracts, payments = start_service("contracts"), start_service("payments")
    topic = ContractsTopic(broker, topic_prefix)
    cid = signed_contract(contracts, language)

    # payments builds the schedule from contract.signed and invoices the signing tranche
    schedule = wait_until(lambda: _schedule(payments, cid), PATIENCE, message="payment schedule")
    signing = next(t for t in schedule["tranches"] if t["key"] == "signing")
    created(payments.post(f"/v1/payment-schedules/{cid}/invoices", headers=FINANCE, json={"tranche_id": signing["id"]}))

    # ... which contracts learns from invoice.issued: the tranche can no longer change
    wait_until(lambda: _locks(contracts, cid) == {"signing": "invoiced"}, PATIENCE, message="invoice.issued consumed")
    problem = assert_problem(raise_request(contracts, cid, {"tranches": [
        {"key": "signing", "amount": "285800.00"}, {"key": "acceptance", "amount": "550100.00"}]}, ["price"],
        "Move money"), 422)
    assert problem["errors"] == [{"pointer": "/changes/tranches/0",
                                  "detail": "tranche 'signing' is already invoiced and cannot change"}]

    # three requests on the same base version
    price = created(raise_request(contracts, cid, PRICE_CHANGE, ["price", "schedule"], "Reporting module"))
    later_end = created(raise_request(contracts, cid, END_DATE_CHANGE, ["schedule"], "Longer term"))
    relabel = created(raise_request(contracts, cid, OVERLAPPING, ["price"], "Rename the final tranche"))
    assert price["number"] == "CR-1" and price["status"] == "submitted" and price["base_version"] == 1
    assert dt.datetime.fromisoformat(price["assessment_due_at"]) > dt.datetime.fromisoformat(price["submitted_at"])
    topic.wait_for("change_request.submitted", cid)

    assert assess(contracts, price["id"], "100000.00")["review"]["steps"] == [
        {"key": "pm", "roles": ["pm"]}, {"key": "legal", "roles": ["legal"]}]
    assess(contracts, later_end["id"], "0.00")
    assess(contracts, relabel["id"], "0.00")
    assert_problem(contracts.post(f"/v1/change-requests/{price['id']}/approve", headers=RAISER), 403)   # four eyes
    ok(contracts.post(f"/v1/change-requests/{price['id']}/approve", headers=PM, json={"comment": "agreed"}))
    assert ok(contracts.post(f"/v1/change-requests/{price['id']}/approve", headers=REVIEWER))["status"] == "approved"
    assert ok(contracts.post(f"/v1/change-requests/{later_end['id']}/approve", headers=PM))["status"] == "approved"
    ok(contracts.post(f"/v1/change-requests/{relabel['id']}/approve", headers=PM))
    ok(contracts.post(f"/v1/change-requests/{relabel['id']}/approve", headers=REVIEWER))

    # the two disjoint requests implemented at the same moment: both apply, one on top of the other
    answers: dict[str, object] = {}
    threads = [threading.Thread(target=lambda r=r: answers.__setitem__(r["id"], contracts.post(
        f"/v1/change-requests/{r['id']}/implement", headers=REVIEWER))) for r in (price, later_end)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    versions = sorted(ok(answers[r["id"]])["implemented_version"] for r in (price, later_end))
    assert versions == [2, 3]
    current = ok(contracts.get(f"/v1/contracts/{cid}", headers=VIEWER))
    assert current["version"] == 3
    assert Decimal(current["terms"]["total_amount"]) == Decimal("1386000.00")
    assert current["terms"]["end_date"] == "2027-12-31"
    assert sum(Decimal(t["amount"]) for t in current["terms"]["tranches"]) == Decimal("1386000.00")

    # the overlapping one must be assessed again
    conflict = assert_problem(contracts.post(f"/v1/change-requests/{relabel['id']}/implement", headers=REVIEWER), 409)
    assert conflict["overlapping"] == ["tranches/acceptance"] and conflict["allowed_transitions"] == ["assess"]
    assert ok(contracts.get(f"/v1/change-requests/{relabel['id']}", headers=VIEWER))["status"] == "approved"

    amended = [e for e in _all(topic, "contract.amended", cid)]
    assert sorted(e["version"] for e in amended) == [2, 3]
    price_event = next(e for e in amended if e["delta"].get("change_request") == "CR-1")
    assert price_event["delta"]["total_price"] == {"from": "1286000.00", "to": "1386000.00", "delta": "100000.00"}
    assert Decimal(price_event["terms"]["total_amount"]) == Decimal("1386000.00")
    topic.wait_for("change_request.implemented", cid)

    # payments re-baselines the unpaid tranches from contract.amended alone
    def rebaselined():
        tranches = {t["key"]: t for t in _schedule(payments, cid)["tranches"] if t["status"] != "superseded"}
        return Decimal(tranches["acceptance"]["amount"]) == Decimal("550100.00") and tranches
    tranches = wait_until(rebaselined, PATIENCE, message="payments re-baselined")
    assert Decimal(tranches["signing"]["amount"]) == Decimal("385800.00")

    # the amendments are numbered in the order they were made (1 = version 2, the first after signing)
    _check_amendment(contracts, price["id"], language, ok(answers[price["id"]])["implemented_version"] - 1)


def _check_amendment(contracts, request_id: str, language: str, number: int) -> None:
    docx = contracts.get(f"/v1/change-requests/{request_id}/amendment?format=docx", headers=VIEWER)
    assert docx.status_code == 200, docx.text
    text = "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    if language == "zh-CN":
        assert f"补充协议（第{number}号）" in text and "人民币壹佰叁拾捌万陆仟元整" in text and "增加人民币100,000.00元" in text
    else:
        assert f"Amendment No. {number} to" in text and "an increase of CNY 100,000.00" in text
    html = contracts.get(f"/v1/change-requests/{request_id}/amendment?format=html", headers=VIEWER)
    assert html.status_code == 200 and "1,386,000.00" in html.text
    redline = contracts.get(f"/v1/change-requests/{request_id}/redline", headers=VIEWER)
    body = zipfile.ZipFile(io.BytesIO(redline.content)).read("word/document.xml").decode()
    assert "<w:ins " in body and "<w:del " in body


def _locks(contracts, cid: str) -> dict[str, str]:
    return views.locked_tranches(contracts.app.state.runtime.db, cid)


def _schedule(payments, cid: str) -> dict | None:
    response = payments.get(f"/v1/payment-schedules/{cid}", headers=FINANCE)
    return response.json() if response.status_code == 200 else None


def _all(topic: ContractsTopic, event_type: str, cid: str) -> list[dict]:
    return wait_until(lambda: len(topic.events(event_type, cid)) >= 2 and topic.events(event_type, cid), PATIENCE,
                      message=event_type)


def test_refusals_leave_nothing_written(start_service):
    contracts = start_service("contracts")
    cid = signed_contract(contracts, "zh-CN")
    bad = raise_request(contracts, cid, {"total_price": "1300000.00", "dates": {"end_date": "2025-01-01"},
                                         "tranches": [{"key": "nope", "amount": "1.00"}]}, ["price"], "Broken")
    problem = assert_problem(bad, 422)
    assert {e["pointer"] for e in problem["errors"]} == {"/changes/tranches/0/key", "/changes/dates/end_date"}
    sums = assert_problem(raise_request(contracts, cid, {"total_price": "1300000.00"}, ["price"], "No tranches"), 422)
    assert sums["errors"][0]["detail"] == "the tranche amounts add up to 1286000.00, but the total is 1300000.00"
    empty = assert_problem(raise_request(contracts, cid, {}, ["scope"], "Nothing"), 422)
    assert any(e["pointer"].startswith("/changes") for e in empty["errors"])
    assert ok(contracts.get(f"/v1/contracts/{cid}/change-requests", headers=VIEWER))["items"] == []

    good = created(raise_request(contracts, cid, END_DATE_CHANGE, ["schedule"], "Longer", submit=False))
    assert_problem(contracts.post(f"/v1/change-requests/{good['id']}/implement", headers=REVIEWER), 409)
    assert_problem(contracts.post(f"/v1/change-requests/{good['id']}/withdraw", headers=PM), 403)
    assert ok(contracts.post(f"/v1/change-requests/{good['id']}/withdraw", headers=RAISER))["status"] == "withdrawn"
    other_org = auth("pm", sub="pm-sun", org="other")
    assert contracts.get(f"/v1/change-requests/{good['id']}", headers=other_org).status_code == 404
    drafted = contracts.post("/v1/contracts", headers=AUTHOR, json={
        "template": "software_development", "language": "zh-CN",
        "variables": {**json.loads(json.dumps(load_library().template("software_development").sample_variables,
                                              default=str)), "contract_number": "SD-DRAFT-1"}}).json()
    assert_problem(raise_request(contracts, drafted["id"], END_DATE_CHANGE, ["schedule"], "Too early"), 409)


def test_an_unassessed_request_is_overdue_once_after_its_working_days(start_service, broker, topic_prefix):
    contracts = start_service("contracts")
    topic = ContractsTopic(broker, topic_prefix)
    cid = signed_contract(contracts, "zh-CN")
    # Wednesday 30 September 2026, the eve of National Day (1-7 October off, Saturday 10 October worked)
    contracts.app.state.clock = lambda: dt.datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)
    request = created(raise_request(contracts, cid, END_DATE_CHANGE, ["schedule"], "Longer term"))
    # five working days: 8, 9, 10 (Saturday, worked), 12, 13 October -> due at the end of Tuesday 13
    due = dt.datetime.fromisoformat(request["assessment_due_at"])
    assert due == dt.datetime(2026, 10, 14, 0, 0, tzinfo=SHANGHAI)

    runtime = contracts.app.state.runtime
    assert announce_overdue(runtime.uow, due - dt.timedelta(seconds=1))[0] == 0     # not a second early
    contracts.app.state.clock = lambda: due + dt.timedelta(seconds=1)                # the scheduler's clock too
    overdue = topic.wait_for("change_request.overdue", cid)
    assert overdue["number"] == "CR-1" and dt.datetime.fromisoformat(overdue["assessment_due_at"]) == due
    assert announce_overdue(runtime.uow, due + dt.timedelta(days=1))[0] == 0         # once only
    assert ok(contracts.get(f"/v1/change-requests/{request['id']}", headers=VIEWER))["overdue"] is True
    assert len(topic.events("change_request.overdue", cid)) == 1
    assess(contracts, request["id"], "0.00")   # assessing late is still possible
