"""The contract lifecycle for real: the contracts service with its database, relay and scheduler on
the real broker, payments and SLA listening on the same topics.

The whole path and the four-eyes rules start from contracts drafted through `POST /v1/contracts`
from a built-in template's sample. Where a test needs a state only time reaches (active for a
year), or a document made to show one thing (a missing clause, two versions to compare), `seed`
puts the contract in place as drafting leaves it: the row, its versions, the first audit entry.
From there everything goes through the API, the scheduler and the broker: review, four eyes,
signatures, the frozen SHA-256, activation on the effective date with no request, renewal notice
and expiry once even with two replicas, comparisons (JSON and a Word redline), and the audit
chain and its verification.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import threading
import uuid

from kafka import KafkaConsumer
from sqlalchemy import delete, select, update

from services.contracts.adapters import audit_log
from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.tables import AuditEntryRow, ContractRow, ContractVersionRow
from services.contracts.domain.document import Article, ContractDocument, Paragraph, SignatureBlock
from services.contracts.adapters.library_files import load_library
from services.contracts.domain.contract import DOCUMENT
from services.contracts.service_layer.lifecycle import advance_key_dates
from shared.local_time import local_date
from shared import cli
from shared.kafka import ensure_topics
from shared.uow import utcnow
from tests.helpers import auth, wait_until
from tests.office_helpers import body, paragraph_text, read_part, resolve_changes, revised_zh, sample_zh, w
from tests.unit.test_payments_domain import software_development_terms

AUTHOR, LEGAL = "author-zhang", "legal-li"
DRAFTER = auth("legal", sub=AUTHOR)             # wrote the contract: may submit, never approve
REVIEWER = auth("legal", sub=LEGAL)
FINANCE = auth("finance", sub="finance-wang")
APPROVER = auth("approver", sub="approver-chen")
VENDOR = auth("vendor", sub="vendor-zhao", party="91320114MA20CY8H6N")   # the IT operations sample's vendor
VIEWER, ADMIN = auth("viewer"), auth("admin", sub="admin-1")
PROBLEM = "application/problem+json"
# Generous: a consumer joining its group on a busy machine can take a while; passing tests never wait it out.
PATIENCE = 60

# Every clause a software development contract must have (the risk checks look for them).
CLAUSES = ("parties", "scope", "price", "payment.tranches", "acceptance", "change_control", "ip.ownership",
           "warranty", "confidentiality", "subcontracting", "breach", "termination", "disputes", "signatures")


def contract_document(number: str, version: int, omit: tuple[str, ...] = ()) -> ContractDocument:
    articles = tuple(Article(key, f"第{i}条 {key}", (Paragraph(f"双方就{key}事项约定如下：按本合同执行。"),))
                     for i, key in enumerate(CLAUSES, 1) if key not in omit)
    return ContractDocument(language="zh-CN", title="订单管理系统开发合同", number=number, version=version,
                            articles=articles, signature_blocks=(SignatureBlock("甲方", "甲方科技有限公司"),
                                                                 SignatureBlock("乙方", "乙方软件有限公司")))


def seed(client, *, documents: list[ContractDocument] | None = None, status: str = "draft",
         effective: dt.date | None = None, end: dt.date | None = None, notice_days: int = 30,
         variables: list[dict] | None = None, org: str = "acme") -> str:
    """A contract as drafting leaves it: the row, its versions and the first audit entry."""
    cid = uuid.uuid4().hex
    number = f"QY-{cid[:6]}"
    documents = documents or [contract_document(number, 1)]
    today = local_date(utcnow())
    effective, end = effective or today, end or today + dt.timedelta(days=400)
    terms = software_development_terms(contract_id=cid, org=org, number=number, effective_date=effective.isoformat(),
                                       end_date=end.isoformat())
    now = utcnow()
    with client.app.state.runtime.db.write_session() as session:
        row = ContractRow(id=cid, org=org, number=number, title=terms.title, kind=terms.kind, language="zh-CN",
                          template_key="software_development", status=status, version=len(documents), revision=1,
                          authors=[AUTHOR], client_name="甲方科技有限公司", vendor_name="乙方软件有限公司",
                          search_text=number.lower(), currency="CNY", total_amount=terms.total_amount,
                          effective_date=effective, end_date=end, renewal_notice_days=notice_days,
                          created_by=AUTHOR, created_at=now, updated_at=now)
        session.add(row)
        for number_, doc in enumerate(documents, 1):
            session.add(ContractVersionRow(
                id=uuid.uuid4().hex, org=org, contract_id=cid, version=number_, template_key="software_development",
                template_version="1.0.0", language=doc.language,
                variables=(variables or [{}] * len(documents))[number_ - 1],
                positions={"warranty": {"kind": "fallback", "key": "short"}} if number_ > 1 else {},
                clause_versions={a.clause_key: "1.0.0" for a in doc.articles}, deviations=[],
                terms=terms.model_dump(mode="json", exclude={"contract_id", "org", "version"}),
                document=DOCUMENT.dump_python(doc, mode="json"),
                docx_sha256=hashlib.sha256(render_docx(doc)).hexdigest(), created_by=AUTHOR,
                created_at=now + dt.timedelta(seconds=number_)))
        audit_log.record(session, org=org, contract_id=cid, actor=AUTHOR, action="contract.drafted", before=None,
                         after=row.model_dump())
        session.commit()
    return cid


def draft(client, template: str) -> dict:
    """A contract drafted through the API from a built-in template's sample variables."""
    variables = json.loads(json.dumps(load_library().template(template).sample_variables, default=str))
    response = client.post("/v1/contracts", headers=DRAFTER,
                           json={"template": template, "language": "zh-CN", "variables": variables})
    assert response.status_code == 201, response.text
    return response.json()


class ContractsTopic:
    """This test's `contracts.events`, read from the beginning."""

    def __init__(self, broker, topic_prefix: str):
        ensure_topics(broker.bootstrap, ("contracts.events",), 3, topic_prefix)
        self.consumer = KafkaConsumer(topic_prefix + "contracts.events", bootstrap_servers=broker.bootstrap,
                                      group_id=None, auto_offset_reset="earliest", consumer_timeout_ms=200)
        self.seen: list[tuple[str, dict]] = []

    def events(self, event_type: str, contract_id: str) -> list[dict]:
        for batch in self.consumer.poll(timeout_ms=100).values():
            self.seen.extend((dict(r.headers)["ce_type"].decode(), json.loads(r.value)) for r in batch)
        return [data for kind, data in self.seen if kind == event_type and data.get("contract_id") == contract_id]

    def wait_for(self, event_type: str, contract_id: str) -> dict:
        return wait_until(lambda: self.events(event_type, contract_id), PATIENCE, message=event_type)[0]


def act(client, cid: str, command: str, headers, **body):
    return client.post(f"/v1/contracts/{cid}/{command}", headers=headers, json=body or None)


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def _found(service, path: str) -> dict | None:
    response = service.get(path, headers=VIEWER)
    return response.json() if response.status_code == 200 else None


def stored(client, cid: str) -> ContractRow:
    with client.app.state.runtime.db.read_session() as session:
        return session.get(ContractRow, cid)


# ------------------------------------------------------------------------------- the whole path

def test_draft_to_active_through_review_signatures_and_the_scheduler(start_service, broker, topic_prefix):
    contracts = start_service("contracts")
    payments, sla = start_service("payments"), start_service("sla")
    topic = ContractsTopic(broker, topic_prefix)
    # The IT operations template's sample: ¥1,297,550.00, effective 1 July 2026, ten SLA metrics.
    created = draft(contracts, "it_operations")
    cid, terms = created["id"], created["terms"]

    submitted = ok(act(contracts, cid, "submit", DRAFTER))
    assert submitted["status"] == "in_review"
    # Legal always; finance because the total is above the default ¥1,000,000.00; no blockers.
    assert [s["key"] for s in submitted["review"]["steps"]] == ["legal", "finance"]
    assert topic.wait_for("contract.submitted", cid)["steps"] == ["legal", "finance"]

    assert_problem(act(contracts, cid, "approve", FINANCE), 403)          # legal's step comes first
    assert ok(act(contracts, cid, "approve", REVIEWER, comment="条款无异议"))["status"] == "in_review"
    approved = ok(act(contracts, cid, "approve", FINANCE, step="finance"))
    assert approved["status"] == "approved" and approved["allowed_transitions"] == ["request-signature"]
    assert topic.wait_for("contract.approved", cid)["round"] == 1

    assert ok(act(contracts, cid, "request-signature", REVIEWER))["status"] == "out_for_signature"
    assert topic.wait_for("contract.signature_requested", cid)["parties"] == ["client", "vendor"]
    assert_problem(act(contracts, cid, "sign", VENDOR, party="client", signatory="何建平"), 403)
    assert ok(act(contracts, cid, "sign", VENDOR, party="vendor", signatory="林嘉怡",
                  method="electronic"))["status"] == "out_for_signature"
    assert_problem(act(contracts, cid, "sign", REVIEWER, party="vendor", signatory="林嘉怡"), 409)
    signed = ok(act(contracts, cid, "sign", REVIEWER, party="client", signatory="何建平", method="company_seal"))

    # The last signature freezes the document: its bytes are kept and their SHA-256 is on the contract.
    # Activation needs no request: the scheduler does it because the effective date has come.
    assert signed["signed_sha256"] and signed["status"] in ("signed", "active")
    document = contracts.get(f"/v1/contracts/{cid}/signed-document", headers=VIEWER)
    assert hashlib.sha256(document.content).hexdigest() == signed["signed_sha256"]
    assert document.content == contracts.get(f"/v1/contracts/{cid}/document", headers=VIEWER).content
    signed_event = topic.wait_for("contract.signed", cid)
    assert signed_event["document_sha256"] == signed["signed_sha256"]
    assert signed_event["terms"] == terms                                   # the full terms, as drafted

    wait_until(lambda: stored(contracts, cid).status == "active", PATIENCE, message="activated by the scheduler")
    activated = topic.wait_for("contract.activated", cid)
    assert activated["terms"] == terms and activated["activated_on"] == local_date(utcnow()).isoformat()
    # Payments built its schedule, and SLA its definition, from the events alone.
    schedule = wait_until(lambda: _found(payments, f"/v1/payment-schedules/{cid}"), PATIENCE,
                          message="payment schedule")
    assert [t["key"] for t in schedule["tranches"]] == [t["key"] for t in terms["tranches"]]
    definition = wait_until(lambda: _found(sla, f"/v1/sla/definitions/{cid}"), PATIENCE, message="SLA definition")
    assert [m["key"] for m in definition["metrics"]] == [m["key"] for m in terms["sla"]["metrics"]]

    view = ok(contracts.get(f"/v1/contracts/{cid}/lifecycle", headers=VIEWER))
    assert [(d["step"], d["by"], d["comment"]) for d in view["decisions"]] == [
        ("legal", LEGAL, "条款无异议"), ("finance", "finance-wang", None)]
    assert {(s["party"], s["signatory"], s["method"], s["by"]) for s in view["signatures"]} == {
        ("vendor", "林嘉怡", "electronic", "vendor-zhao"), ("client", "何建平", "company_seal", LEGAL)}
    trail = ok(contracts.get(f"/v1/contracts/{cid}/audit", headers=VIEWER))
    assert trail["intact"] is True
    assert [e["action"] for e in trail["entries"]] == [
        "contract.drafted", "contract.submitted", "contract.step_approved", "contract.approved",
        "contract.signature_requested", "contract.party_signed", "contract.signed", "contract.activated"]
    assert trail["entries"][-1]["actor"] == "system:contracts-key-dates"
    assert all(e["prev_hash"] == p["entry_hash"] for p, e in zip(trail["entries"], trail["entries"][1:]))

    # Signed and active: the text is frozen; only an amendment changes it.
    body = assert_problem(act(contracts, cid, "submit", DRAFTER), 409)
    assert body["current_state"] == "active" and body["allowed_transitions"] == ["complete", "terminate"]
    edit = contracts.patch(f"/v1/contracts/{cid}", headers={**DRAFTER, "If-Match": created["etag"]},
                           json={"variables": {"project_name": "改名"}})
    assert_problem(edit, 409)


# ------------------------------------------------------------------------------- review rules

def test_four_eyes_rejection_with_comments_and_a_second_round(start_service, broker, topic_prefix):
    contracts = start_service("contracts")
    topic = ContractsTopic(broker, topic_prefix)
    created = draft(contracts, "software_development")
    cid = created["id"]
    ok(act(contracts, cid, "submit", DRAFTER))

    # The author holds the legal role but wrote the contract: refused, and nothing recorded.
    refused = assert_problem(act(contracts, cid, "approve", DRAFTER), 403)
    assert "Four eyes" in refused["detail"]
    assert_problem(act(contracts, cid, "reject", DRAFTER, comment="自己驳回"), 403)
    assert_problem(act(contracts, cid, "reject", REVIEWER), 422)                    # a rejection needs a comment

    rejected = ok(act(contracts, cid, "reject", REVIEWER, comment="违约金比例过高，请修改第十条"))
    assert rejected["status"] == "draft" and rejected["allowed_transitions"] == ["submit"]
    assert rejected["review"]["outcome"] == "rejected"
    assert rejected["review"]["decisions"][0]["comment"] == "违约金比例过高，请修改第十条"
    event = topic.wait_for("contract.rejected", cid)
    assert (event["step"], event["rejected_by"], event["comment"]) == ("legal", LEGAL, "违约金比例过高，请修改第十条")

    # Whoever writes the next version is an author too: the reviewer who edits cannot approve it.
    edited = contracts.patch(f"/v1/contracts/{cid}", headers={**REVIEWER, "If-Match": created["etag"]},
                             json={"variables": {"project_name": "订单管理系统二期"}, "reason": "按审阅意见修改"})
    assert edited.status_code == 200, edited.text
    again = ok(act(contracts, cid, "submit", DRAFTER))
    assert again["review"]["round"] == 2 and again["review"]["version"] == 2 and again["review"]["decisions"] == []
    assert "Four eyes" in assert_problem(act(contracts, cid, "approve", REVIEWER), 403)["detail"]
    assert ok(act(contracts, cid, "approve", auth("legal", sub="legal-zhou")))["status"] == "in_review"
    view = ok(contracts.get(f"/v1/contracts/{cid}/lifecycle", headers=VIEWER))
    assert [(d["round"], d["version"], d["decision"], d["by"]) for d in view["decisions"]] == [
        (1, 1, "rejected", LEGAL), (2, 2, "approved", "legal-zhou")]


def test_impossible_transitions_answer_409_naming_the_state_and_the_allowed_ones(start_service):
    contracts = start_service("contracts")
    cid = seed(contracts)
    for command, body in (("approve", {}), ("request-signature", {}), ("activate", {}), ("complete", {}),
                          ("terminate", {"reason": "x"}), ("sign", {"party": "client", "signatory": "王总"})):
        problem = assert_problem(act(contracts, cid, command, ADMIN, **body), 409)
        assert problem["current_state"] == "draft" and problem["allowed_transitions"] == ["submit"], problem
        assert "draft" in problem["detail"] and "submit" in problem["detail"]
    assert stored(contracts, cid).revision == 1                                    # nothing written
    assert_problem(act(contracts, cid, "submit", auth("legal", org="other")), 404)    # another org's contract
    assert_problem(act(contracts, cid, "submit", FINANCE), 403)


def test_a_blocking_finding_holds_approval_until_overridden_with_a_reason(start_service):
    contracts = start_service("contracts")
    ok(contracts.put("/v1/approval-policy", headers=ADMIN, json={"steps": [
        {"key": "legal", "roles": ["legal"]},
        {"key": "finance", "roles": ["finance"], "when": {"kind": "total_above", "amount": "5000000.00"}}]}))
    number = "QY-BLOCK"
    cid = seed(contracts, documents=[contract_document(number, 1, omit=("confidentiality",))])

    review = ok(act(contracts, cid, "submit", DRAFTER))["review"]
    assert [s["key"] for s in review["steps"]] == ["legal"]                  # below the org's finance threshold
    assert [b["id"] for b in review["blockers"]] == ["required_clause_missing:confidentiality"]
    assert ok(act(contracts, cid, "approve", REVIEWER))["status"] == "in_review"      # held by the finding
    assert_problem(act(contracts, cid, "approve", APPROVER), 409)
    assert_problem(act(contracts, cid, "override", REVIEWER, finding="required_clause_missing:confidentiality",
                       reason="x"), 403)                                       # overriding is the approver's
    assert_problem(act(contracts, cid, "override", APPROVER, finding="nope", reason="x"), 422)
    assert_problem(act(contracts, cid, "override", APPROVER, finding="required_clause_missing:confidentiality"), 422)

    done = ok(act(contracts, cid, "override", APPROVER, finding="required_clause_missing:confidentiality",
                  reason="保密条款见双方另行签署的保密协议"))
    assert done["status"] == "approved"
    override = done["review"]["overrides"][0]
    assert (override["by"], override["reason"]) == ("approver-chen", "保密条款见双方另行签署的保密协议")
    assert ok(contracts.get("/v1/approval-policy", headers=VIEWER))["steps"][1]["when"]["amount"] == "5000000.00"
    assert_problem(contracts.put("/v1/approval-policy", headers=REVIEWER, json={"steps": []}), 403)
    bad = assert_problem(contracts.put("/v1/approval-policy", headers=ADMIN, json={"steps": []}), 422)
    assert any(e["pointer"] == "/steps" for e in bad["errors"])


# ------------------------------------------------------------------------------- key dates

def test_renewal_notice_and_expiry_fire_once_from_two_replicas(start_service, broker, topic_prefix):
    first = start_service("contracts")
    second = start_service("contracts", database_url=first.app.state.runtime.settings.db_url())
    topic = ContractsTopic(broker, topic_prefix)
    today = local_date(utcnow())
    renewing = seed(first, status="active", effective=today - dt.timedelta(days=300),
                    end=today + dt.timedelta(days=20), notice_days=30)
    ended = seed(first, status="active", effective=today - dt.timedelta(days=400), end=today - dt.timedelta(days=1))
    quiet = seed(first, status="active", effective=today - dt.timedelta(days=10), end=today + dt.timedelta(days=90))

    # Both replicas' schedulers run, and the job is also run by hand from four threads at once.
    threads = [threading.Thread(target=advance_key_dates, args=(c.app.state.runtime.uow, utcnow()))
               for c in (first, second, first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    due = topic.wait_for("contract.renewal_due", renewing)
    assert (due["end_date"], due["notice_days"]) == ((today + dt.timedelta(days=20)).isoformat(), 30)
    assert topic.wait_for("contract.expired", ended)["expired_on"] == today.isoformat()
    wait_until(lambda: stored(first, ended).status == "expired", PATIENCE)

    advance_key_dates(first.app.state.runtime.uow, utcnow())          # and once more, for good measure
    with first.app.state.runtime.db.read_session() as session:
        outbox = first.app.state.runtime.tables["outbox"]
        types = [r.topic for r in session.execute(select(outbox))]
        entries = {cid: [e.action for e in audit_log.stream_entries(session, audit_log.contract_stream(cid))]
                   for cid in (renewing, ended, quiet)}
    assert len(types) == 2                                             # one renewal_due, one expired: no more
    assert len(topic.events("contract.renewal_due", renewing)) == 1
    assert len(topic.events("contract.expired", ended)) == 1
    assert entries == {renewing: ["contract.drafted", "contract.renewal_due"],
                       ended: ["contract.drafted", "contract.expired"], quiet: ["contract.drafted"]}
    assert stored(first, quiet).renewal_due_at is None and stored(first, renewing).status == "active"


def test_manual_activation_waits_for_the_effective_date(start_service):
    contracts = start_service("contracts")
    cid = seed(contracts, status="signed", effective=local_date(utcnow()) + dt.timedelta(days=5))
    problem = assert_problem(act(contracts, cid, "activate", REVIEWER), 409)
    assert "takes effect" in problem["detail"]
    terminated = ok(act(contracts, cid, "terminate", REVIEWER, reason="项目取消"))
    assert terminated["status"] == "terminated" and terminated["allowed_transitions"] == []


# ------------------------------------------------------------------------------- compare

def test_compare_two_versions_as_json_and_as_a_word_redline(start_service, tmp_path, backend):
    contracts = start_service("contracts")
    old, new = dataclasses.replace(sample_zh(), version=1), dataclasses.replace(revised_zh(), version=2)
    cid = seed(contracts, documents=[old, new],
               variables=[{"total_price": {"amount": "1200000.00", "currency": "CNY"}, "warranty_months": 12},
                          {"total_price": {"amount": "1200000.00", "currency": "CNY"}, "warranty_months": 6,
                           "notice_days": 30}])

    diff = ok(contracts.get(f"/v1/contracts/{cid}/compare", params={"from": 1, "to": 2}, headers=VIEWER))
    assert (diff["from"], diff["to"]) == (1, 2)
    assert diff["variables"] == [{"pointer": "/warranty_months", "change": "changed", "from": 12, "to": 6},
                                 {"pointer": "/notice_days", "change": "added", "to": 30}]
    clauses = {c["clause"]: c for c in diff["clauses"]}
    assert clauses["personnel"]["change"] == "removed" and clauses["data"]["change"] == "added"
    assert clauses["scope"]["change"] == "unchanged"
    term = clauses["term"]
    assert term["change"] == "changed"
    # Chinese is compared character by character: the twelve months became twenty-four.
    assert term["text"] == [["equal", "本合同自双方签字盖章之日起生效，有效期为"], ["delete", "十二个月"],
                            ["insert", "二十四个月，期满前三十日内双方可书面续约"], ["equal", "。"]]

    redline = contracts.get(f"/v1/contracts/{cid}/compare", params={"from": 1, "to": 2, "format": "docx"},
                            headers=VIEWER)
    assert redline.status_code == 200 and redline.headers["content-type"].startswith("application/vnd.openxml")
    assert b"w:ins " in _document_xml(redline.content) and b"w:del " in _document_xml(redline.content)
    assert b'w:author="author-zhang"' in _document_xml(redline.content)
    assert _texts(resolve_changes(redline.content, accept=True)) == _texts(body(render_docx(new)))
    assert _texts(resolve_changes(redline.content, accept=False)) == _texts(body(render_docx(old)))
    if shutil.which("soffice") and backend == "sqlite":          # the same bytes on either backend: once is enough
        _check_with_libreoffice(redline.content, old, new, tmp_path)

    assert_problem(contracts.get(f"/v1/contracts/{cid}/compare", params={"from": 1, "to": 9}, headers=VIEWER), 404)
    assert_problem(contracts.get(f"/v1/contracts/{cid}/compare", params={"from": 0, "to": 1}, headers=VIEWER), 422)
    assert_problem(contracts.get(f"/v1/contracts/{cid}/compare", params={"from": 1, "to": 2},
                                 headers=auth("viewer", org="other")), 404)


def _document_xml(docx: bytes) -> bytes:
    return read_part(docx, "word/document.xml")


def _texts(root) -> list[str]:
    return [paragraph_text(p) for p in root.iter(w("p"))]


def _check_with_libreoffice(redline: bytes, old: ContractDocument, new: ContractDocument, tmp_path) -> None:
    """Accept All / Reject All in a real LibreOffice (when installed): the new text, then the old."""
    from tests.integration.test_libreoffice import Office, _python_with_uno

    python = _python_with_uno()
    if python is None:
        return
    files = {"redline": redline, "old": render_docx(old), "new": render_docx(new)}
    for name, content in files.items():
        (tmp_path / f"{name}.docx").write_bytes(content)
    jobs = [{"action": action, "source": str(tmp_path / f"{source}.docx"), "target": str(tmp_path / f"{name}.txt")}
            for action, source, name in (("accept", "redline", "accepted"), ("reject", "redline", "rejected"),
                                         ("none", "new", "new"), ("none", "old", "old"))]
    office = Office(tmp_path, python)
    try:
        accepted, rejected, _, _ = office.run(jobs)
    finally:
        office.stop()
    text = {name: (tmp_path / f"{name}.txt").read_text(encoding="utf-8-sig")
            for name in ("accepted", "rejected", "new", "old")}
    assert accepted["before"] > 0 and accepted["after"] == rejected["after"] == 0
    assert text["accepted"] == text["new"] and text["rejected"] == text["old"]


# ------------------------------------------------------------------------------- audit

def test_audit_verify_names_an_edited_and_a_deleted_entry(start_service, monkeypatch, capsys):
    contracts = start_service("contracts")
    edited, trimmed = seed(contracts), seed(contracts)
    for cid in (edited, trimmed):
        ok(act(contracts, cid, "submit", DRAFTER))
        ok(act(contracts, cid, "reject", REVIEWER, comment="请补充附件"))
    monkeypatch.setenv("QIYUE_CONTRACTS_DATABASE_URL", contracts.app.state.runtime.settings.db_url())
    assert cli.main(["audit", "verify"]) == 0
    assert "intact" in capsys.readouterr().out

    with contracts.app.state.runtime.db.write_session() as session:
        session.execute(update(AuditEntryRow).where(AuditEntryRow.stream == f"contract:{edited}",
                                                    AuditEntryRow.seq == 2).values(actor="somebody-else"))
        session.execute(delete(AuditEntryRow).where(AuditEntryRow.stream == f"contract:{trimmed}",
                                                    AuditEntryRow.seq == 3))
        session.commit()

    assert cli.main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN contract:{edited}#2: content does not match its hash" in out
    assert f"BROKEN contract:{trimmed}#3" in out and "removed from the end" in out
    trail = ok(contracts.get(f"/v1/contracts/{edited}/audit", headers=VIEWER))
    assert trail["intact"] is False and trail["breaks"] == [
        f"contract:{edited}#2: content does not match its hash: the entry was edited"]
