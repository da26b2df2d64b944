"""Counterparty scoping (issue 16): a vendor's user sees and acts only on the contracts whose vendor
party is its own company, and only what a counterparty should see.

Two vendors of the same client organisation, each with an IT operations contract drafted, approved,
signed and activated through the API; payments and SLA learn each contract's vendor party from the
contract events alone. Each vendor's token carries its company's credit code (`party`). In every
service, every list holds only its own contract and every read of the other's answers 404 (no
existence leak); the organisation's internals (audit trail, policies, risk findings, org reports,
the live SLA stream) are refused; change requests are raised on its own contracts only and acted on
only by the user who raised them.
"""
from __future__ import annotations

import json

import pytest

from services.contracts.adapters.library_files import load_library
from tests.helpers import auth, wait_until
from tests.integration.test_contracts_lifecycle import assert_problem, ok

PATIENCE = 60
ORG = "acme"
AUTHOR, REVIEWER = auth("legal", sub="legal-author"), auth("legal", sub="legal-reviewer")
FINANCE, PM, VIEWER = auth("finance", sub="finance-wang"), auth("pm", sub="pm-sun"), auth("viewer", sub="viewer-1")

# 南京擎云 is the template sample's vendor; 北京禾丰 a second vendor of the same client.
QINGYUN = "91320114MA20CY8H6N"
HEFENG = "91110108MA01ABCD3X"
VENDOR_A = auth("vendor", sub="qingyun-sun", party=QINGYUN)
VENDOR_A2 = auth("vendor", sub="qingyun-li", party=QINGYUN)     # a colleague at the same company
VENDOR_B = auth("vendor", sub="hefeng-zhou", party=HEFENG)
NO_PARTY = auth("vendor", sub="vendor-unknown")


def _variables(number: str, vendor_name: str, credit_code: str) -> dict:
    variables = json.loads(json.dumps(load_library().template("it_operations").sample_variables, default=str))
    variables["contract_number"] = number
    variables["vendor"] = {**variables["vendor"], "name": vendor_name, "credit_code": credit_code}
    return variables


def active_contract(contracts, number: str, vendor_name: str, credit_code: str, vendor_signer: dict) -> str:
    """Drafted, approved (legal, then finance above 1m), signed by both parties; the scheduler activates it."""
    drafted = contracts.post("/v1/contracts", headers=AUTHOR, json={
        "template": "it_operations", "language": "zh-CN", "variables": _variables(number, vendor_name, credit_code)})
    assert drafted.status_code == 201, drafted.text
    cid = drafted.json()["id"]
    ok(contracts.post(f"/v1/contracts/{cid}/submit", headers=AUTHOR))
    ok(contracts.post(f"/v1/contracts/{cid}/approve", headers=REVIEWER, json={"comment": "内部意见：价格偏高"}))
    assert ok(contracts.post(f"/v1/contracts/{cid}/approve", headers=FINANCE))["status"] == "approved"
    ok(contracts.post(f"/v1/contracts/{cid}/request-signature", headers=AUTHOR))
    ok(contracts.post(f"/v1/contracts/{cid}/sign", headers=REVIEWER, json={"party": "client", "signatory": "刘振华"}))
    ok(contracts.post(f"/v1/contracts/{cid}/sign", headers=vendor_signer, json={"party": "vendor", "signatory": "孙嘉怡"}))
    return cid


def _found(client, path: str) -> dict | None:
    response = client.get(path, headers=VIEWER)
    return response.json() if response.status_code == 200 else None


def raise_request(contracts, cid: str, headers: dict, submit: bool = False):
    return contracts.post(f"/v1/contracts/{cid}/change-requests", headers=headers, json={
        "title": "延长服务期", "description": "延长服务期至2027年底", "reason": "业务需要", "kinds": ["schedule"],
        "changes": {"dates": {"end_date": "2027-12-31"}}, "submit": submit})


@pytest.fixture
def two_vendors(start_service):
    contracts, payments, sla = start_service("contracts"), start_service("payments"), start_service("sla")
    a = active_contract(contracts, "HJ-ITO-2026-A", "南京擎云信息技术有限公司", QINGYUN, VENDOR_A)
    b = active_contract(contracts, "HJ-ITO-2026-B", "北京禾丰信息技术有限公司", HEFENG, VENDOR_B)
    for cid in (a, b):
        schedule = wait_until(lambda: _found(payments, f"/v1/payment-schedules/{cid}"), PATIENCE, message="schedule")
        transition = next(t for t in schedule["tranches"] if t["key"] == "transition")
        issued = payments.post(f"/v1/payment-schedules/{cid}/invoices", headers=FINANCE,
                               json={"tranche_id": transition["id"]})
        assert issued.status_code == 201, issued.text
        wait_until(lambda: _found(sla, f"/v1/sla/definitions/{cid}"), PATIENCE, message="SLA definition")
    return contracts, payments, sla, a, b


def _ids(answer: dict, key: str = "id") -> set[str]:
    return {item[key] for item in answer["items"]}


def test_each_vendor_reads_only_its_own_contracts_in_every_service(two_vendors):
    contracts, payments, sla, a, b = two_vendors
    assert {a, b} <= _ids(ok(contracts.get("/v1/contracts", headers=VIEWER)))     # the organisation sees both

    for mine, theirs, vendor in ((a, b, VENDOR_A), (b, a, VENDOR_B)):
        assert _ids(ok(contracts.get("/v1/contracts", headers=vendor))) == {mine}
        assert _ids(ok(contracts.get("/v1/contracts?q=HJ-ITO", headers=vendor))) == {mine}
        assert _ids(ok(contracts.get("/v1/contracts?counterparty=信息技术", headers=vendor))) == {mine}
        for path in ("", "/versions", "/versions/1", "/document", "/document?format=html", "/lifecycle",
                     "/signed-document", "/compare?from=1&to=1", "/change-requests"):
            assert contracts.get(f"/v1/contracts/{mine}{path}", headers=vendor).status_code == 200, path
            assert_problem(contracts.get(f"/v1/contracts/{theirs}{path}", headers=vendor), 404)

        assert _ids(ok(payments.get("/v1/payment-schedules", headers=vendor)), "contract_id") == {mine}
        assert _ids(ok(payments.get("/v1/invoices", headers=vendor)), "contract_id") == {mine}
        assert ok(payments.get(f"/v1/invoices?contract_id={theirs}", headers=vendor))["items"] == []
        their_invoice = next(iter(ok(payments.get(f"/v1/invoices?contract_id={theirs}", headers=VIEWER))["items"]))
        assert_problem(payments.get(f"/v1/invoices/{their_invoice['id']}", headers=vendor), 404)
        for path in ("", "/history", "/late-fees"):
            ok(payments.get(f"/v1/payment-schedules/{mine}{path}", headers=vendor))
            assert_problem(payments.get(f"/v1/payment-schedules/{theirs}{path}", headers=vendor), 404)

        assert _ids(ok(sla.get("/v1/sla/definitions", headers=vendor)), "contract_id") == {mine}
        for path in ("/v1/sla/definitions/{}", "/v1/contracts/{}/sla", "/v1/contracts/{}/sla/reports/2026-11"):
            ok(sla.get(path.format(mine), headers=vendor))
            assert_problem(sla.get(path.format(theirs), headers=vendor), 404)

    # A vendor token that names no company reaches no contract at all.
    assert ok(contracts.get("/v1/contracts", headers=NO_PARTY))["items"] == []
    assert_problem(contracts.get(f"/v1/contracts/{a}", headers=NO_PARTY), 404)
    assert ok(payments.get("/v1/payment-schedules", headers=NO_PARTY))["items"] == []
    assert ok(sla.get("/v1/sla/definitions", headers=NO_PARTY))["items"] == []


def test_a_vendor_reads_no_internals_of_the_organisation(two_vendors):
    contracts, payments, sla, a, _ = two_vendors
    for path in (f"/v1/contracts/{a}/audit", f"/v1/contracts/{a}/checks", "/v1/approval-policy", "/v1/change-policy"):
        assert_problem(contracts.get(path, headers=VENDOR_A), 403)
        ok(contracts.get(path, headers=VIEWER))
    for path in ("/v1/reports/aging", "/v1/reports/aging.csv", "/v1/reports/cash-flow", "/v1/reports/cash-flow.csv"):
        assert_problem(payments.get(path, headers=VENDOR_A), 403)
    assert_problem(payments.post("/v1/calendar-feeds", headers=VENDOR_A, json={}), 403)
    assert_problem(sla.get("/v1/sla/overview", headers=VENDOR_A), 403)
    assert_problem(sla.get("/v1/stream", headers=VENDOR_A), 403)

    # Its own contract's text, versions and signatures, but not the internal review and its comments.
    view = ok(contracts.get(f"/v1/contracts/{a}/lifecycle", headers=VENDOR_A))
    assert {s["party"] for s in view["signatures"]} == {"client", "vendor"}
    assert "decisions" not in view and view.get("review") is None
    assert "内部意见" not in json.dumps(view, ensure_ascii=False)
    assert "内部意见" in json.dumps(ok(contracts.get(f"/v1/contracts/{a}/lifecycle", headers=VIEWER)),
                                 ensure_ascii=False)
    assert "deviations" not in ok(contracts.get(f"/v1/contracts/{a}", headers=VENDOR_A))
    assert "deviations" not in ok(contracts.get(f"/v1/contracts/{a}/versions/1", headers=VENDOR_A))
    versions = ok(contracts.get(f"/v1/contracts/{a}/versions", headers=VENDOR_A))["items"]
    assert versions and all("deviations" not in v for v in versions)


def test_change_requests_raised_on_its_contracts_and_acted_on_only_when_it_raised_them(two_vendors):
    contracts, _, _, a, b = two_vendors
    assert_problem(raise_request(contracts, b, VENDOR_A), 404)            # not its contract
    mine = ok_created(raise_request(contracts, a, VENDOR_A))
    internal = ok_created(raise_request(contracts, a, PM))

    # The other vendor does not learn that either request exists.
    for request_id in (mine["id"], internal["id"]):
        assert_problem(contracts.get(f"/v1/change-requests/{request_id}", headers=VENDOR_B), 404)
        for command in ("submit", "withdraw"):
            assert_problem(contracts.post(f"/v1/change-requests/{request_id}/{command}", headers=VENDOR_B), 404)
    # Its own contract's requests it reads; the one the client raised it does not act on.
    assert _ids(ok(contracts.get(f"/v1/contracts/{a}/change-requests", headers=VENDOR_A))) == {
        mine["id"], internal["id"]}
    assert "review" not in ok(contracts.get(f"/v1/change-requests/{internal['id']}", headers=VENDOR_A))
    for command in ("submit", "withdraw"):
        assert_problem(contracts.post(f"/v1/change-requests/{internal['id']}/{command}", headers=VENDOR_A), 403)
    # The one it raised it acts on (its user: a colleague's request is the colleague's to withdraw).
    assert_problem(contracts.post(f"/v1/change-requests/{mine['id']}/submit", headers=VENDOR_A2), 403)
    assert ok(contracts.post(f"/v1/change-requests/{mine['id']}/submit", headers=VENDOR_A))["status"] == "submitted"
    assert ok(contracts.post(f"/v1/change-requests/{mine['id']}/withdraw", headers=VENDOR_A))["status"] == "withdrawn"


def ok_created(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def test_a_vendor_inbox_holds_only_what_is_addressed_to_its_own_user(start_service):
    """An item for the `vendor` role would reach every vendor company of the organisation: not shown."""
    import datetime as dt
    import uuid

    from services.notifications.adapters.tables import InboxItemRow

    notifications = start_service("notifications")
    now = dt.datetime.now(dt.timezone.utc)
    items = {kind: uuid.uuid4().hex for kind in ("user", "role")}
    with notifications.app.state.runtime.db.write_session() as session:
        for kind, item_id in items.items():
            session.add(InboxItemRow(id=item_id, org=ORG, recipient_kind=kind,
                                     recipient="qingyun-sun" if kind == "user" else "vendor",
                                     event_id=uuid.uuid4().hex, event_type="contract.signed", contract_id="c-1",
                                     subject=kind, body=kind, created_at=now))
        session.commit()
    assert _ids(ok(notifications.get("/v1/inbox", headers=VENDOR_A))) == {items["user"]}
    assert ok(notifications.get("/v1/inbox", headers=VENDOR_B))["items"] == []
    assert_problem(notifications.post(f"/v1/inbox/{items['role']}/read", headers=VENDOR_B), 404)
    assert ok(notifications.post("/v1/inbox/read-all", headers=VENDOR_A))["marked"] == 1


def test_a_vendor_reports_tickets_on_its_own_contracts_only(start_service):
    """Another company's contract is answered as one without an SLA: 404 alone, 422 naming it in a batch."""
    import datetime as dt

    sla = start_service("sla")
    metric = {"key": "fr", "kind": "first_response", "label": "P1 first response", "target": "240", "priority": "P1"}
    hours = {d: [["00:00", "24:00"]] for d in range(1, 8)}
    for cid, party in (("ito-a", QINGYUN), ("ito-b", HEFENG)):
        assert sla.post("/v1/sla/definitions", headers=PM, json={
            "contract_id": cid, "number": cid, "title": "运维", "monthly_fee": "1000.00",
            "effective_date": "2026-01-01", "end_date": "2030-12-31", "vendor_party": party,
            "sla": {"service_hours": {"hours": hours}, "metrics": [metric]}}).status_code == 201

    def ticket(cid: str, n: int) -> dict:
        return {"contract_id": cid, "ticket_id": f"T-{n}", "source_id": f"{cid}:{n}", "kind": "opened",
                "at": dt.datetime.now(dt.timezone.utc).isoformat(), "priority": "P1"}

    assert sla.post("/v1/sla/ticket-events", headers=VENDOR_A, json=ticket("ito-a", 1)).status_code == 201
    assert_problem(sla.post("/v1/sla/ticket-events", headers=VENDOR_B, json=ticket("ito-a", 2)), 404)
    batch = assert_problem(sla.post("/v1/sla/ticket-events/batch", headers=VENDOR_B,
                                    json={"items": [ticket("ito-a", 3), ticket("ito-b", 4)]}), 422)
    assert [e["pointer"] for e in batch["errors"]] == ["/items/0/contract_id"]
    assert_problem(sla.post("/v1/sla/ticket-events", headers=NO_PARTY, json=ticket("ito-a", 5)), 404)
    # Nothing of the refused ones was recorded: the first ticket event is the only one stored.
    from sqlalchemy import func, select

    from services.sla.adapters.tables import TicketEventRow
    with sla.app.state.runtime.db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(TicketEventRow)) == 1
    assert _ids(ok(sla.get("/v1/sla/definitions", headers=VENDOR_A)), "contract_id") == {"ito-a"}


def test_every_route_of_another_companys_contract_answers_404_or_403(two_vendors):
    """Walk every route naming a contract or a change request in contracts, payments and SLA: with
    the other company's ids a vendor gets 404 (or 403 for the organisation's internals), never an answer."""
    from tests.integration.test_auth_every_endpoint import _api_routes

    contracts, payments, sla, a, _ = two_vendors
    request_id = ok_created(raise_request(contracts, a, PM))["id"]
    fill = {"contract_id": a, "request_id": request_id, "number": "1", "key": "transition", "period": "2026-11"}
    walked = 0
    for client in (contracts, payments, sla):
        for route in _api_routes(client.app.routes):
            if "{contract_id}" not in route.path and "{request_id}" not in route.path:
                continue
            path = route.path.format(**fill)
            for method in route.methods - {"HEAD", "OPTIONS"}:
                answer = client.request(method, path, headers=VENDOR_B)
                assert answer.status_code in (403, 404), (method, route.path, answer.status_code, answer.text)
                walked += 1
    assert walked > 30
