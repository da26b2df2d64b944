"""Drafting through the API for real: the contracts service with its database, relay and the broker.

Every built-in template is drafted in both languages from its own sample variables; the 422 lists
every bad variable and leaves nothing behind; edits need the current ETag and make immutable
versions; documents are byte-identical renders; risk checks and the organisation's clause
versions (draft, publish, never change again, deprecate) work end to end.
"""
from __future__ import annotations

import copy
import hashlib
import io
import threading
from decimal import Decimal

from docx import Document
from sqlalchemy import func, select

from services.contracts.adapters.tables import AuditEntryRow, ContractRow, ContractVersionRow
from services.contracts.service_layer.catalogue import Catalogue
from tests.helpers import auth
from tests.integration.test_contracts_lifecycle import ContractsTopic, assert_problem

LEGAL = auth("legal", sub="legal-zhang")
VIEWER, OTHER_ORG = auth("viewer"), auth("legal", org="other-org")
LANGUAGES = ("zh-CN", "en")


def start(start_service):
    """The contracts service, migrated from its alembic history on a database of its own."""
    return start_service("contracts")


def templates(client) -> dict[str, dict]:
    """key -> the template (zh-CN) with its sample variables."""
    listed = client.get("/v1/templates", headers=VIEWER)
    assert listed.status_code == 200, listed.text
    keys = sorted({item["key"] for item in listed.json()["items"]})
    return {key: client.get(f"/v1/templates/{key}", headers=VIEWER).json() for key in keys}


def sample(client, key: str) -> dict:
    return copy.deepcopy(client.get(f"/v1/templates/{key}", headers=VIEWER).json()["sample_variables"])


def draft(client, key: str, language: str = "zh-CN", variables: dict | None = None, headers=LEGAL, **extra):
    body = {"template": key, "language": language, "variables": variables or sample(client, key), **extra}
    return client.post("/v1/contracts", json=body, headers=headers)


def created(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def counts(client) -> tuple[int, int, int, int]:
    """Contracts, versions, audit entries and outbox rows in the service's database."""
    runtime = client.app.state.runtime
    outbox = runtime.tables["outbox"]
    with runtime.db.read_session() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) for t in
                     (ContractRow, ContractVersionRow, AuditEntryRow, outbox))


def document(client, cid: str, fmt: str = "docx", **params):
    response = client.get(f"/v1/contracts/{cid}/document", params={"format": fmt, **params}, headers=VIEWER)
    assert response.status_code == 200, response.text
    assert response.headers["x-content-sha256"] == hashlib.sha256(response.content).hexdigest()
    return response


def test_every_template_drafts_in_both_languages_from_its_samples(backend, start_service, broker, topic_prefix):
    client, topic = start(start_service), ContractsTopic(broker, topic_prefix)
    found = templates(client)
    assert {"software_development", "call_centre", "it_operations", "labour_outsourcing"} <= set(found)
    listed = client.get("/v1/templates", headers=VIEWER).json()["items"]
    assert sorted((i["key"], i["language"]) for i in listed) == sorted((k, lang) for k in found for lang in LANGUAGES)
    drafted = {}
    for key, template in found.items():
        assert template["variables_schema"]["$schema"].endswith("2020-12/schema")
        assert set(template["sample_variables"]) <= set(template["variables_schema"]["properties"])
        for language in LANGUAGES:
            variables = sample(client, key)
            variables["contract_number"] += f"-{language}"
            response = draft(client, key, language, variables)
            contract = created(response)
            assert response.headers["etag"] == '"1"' and contract["version"] == 1 and contract["status"] == "draft"
            terms = contract["terms"]
            assert terms["contract_id"] == contract["id"] and terms["language"] == language
            assert Decimal(terms["total_amount"]) == Decimal(variables["total_price"]["amount"])
            if terms["tranches"]:
                assert sum(Decimal(t["amount"]) for t in terms["tranches"]) == Decimal(terms["total_amount"])
            assert contract["deviations"] == [] and contract["clause_versions"]
            drafted[contract["id"]] = (key, language)
            docx = document(client, contract["id"])
            again = document(client, contract["id"])
            assert docx.content == again.content
            text = "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
            assert variables["client"]["name"] in text
            html = document(client, contract["id"], "html")
            assert html.headers["content-type"].startswith("text/html") and contract["title"] in html.text
    for cid, (key, language) in drafted.items():
        event = topic.wait_for("contract.drafted", cid)
        assert (event["template"], event["language"], event["org"], event["version"]) == (key, language, "acme", 1)


def test_bad_variables_are_all_listed_and_nothing_is_written(backend, start_service):
    client = start(start_service)
    variables = sample(client, "software_development")
    variables["total_price"] = {"amount": "-5", "currency": "CNY"}
    variables["effective_date"] = "not a date"
    del variables["vendor"]
    variables["tranches"][0]["percent"] = "abc"
    variables["colour"] = "blue"
    body = assert_problem(draft(client, "software_development", variables=variables), 422)
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/variables/total_price/amount", "/variables/effective_date", "/variables/vendor",
            "/variables/tranches/0/percent", "/variables/colour"} <= pointers, pointers
    assert assert_problem(draft(client, "no_such_template", variables={"x": 1}), 422)["errors"][0]["pointer"] == "/template"
    assert "/language" in {e["pointer"] for e in assert_problem(draft(client, "software_development", "fr"), 422)["errors"]}
    assert assert_problem(draft(client, "software_development", template_version="9.9.9"), 422)["errors"][0]["pointer"] \
        == "/template_version"
    assert assert_problem(draft(client, "software_development", headers=VIEWER), 403)
    assert counts(client) == (0, 0, 0, 0)

    # Idempotency-Key: the retry answers the first answer; the key with another body is refused.
    key = {**LEGAL, "Idempotency-Key": "draft-1"}
    first = created(draft(client, "software_development", headers=key))
    assert created(draft(client, "software_development", headers=key))["id"] == first["id"]
    other = sample(client, "software_development") | {"contract_number": "OTHER-1"}
    assert assert_problem(draft(client, "software_development", variables=other, headers=key), 422)
    # The same contract number twice in one organisation is a conflict naming the variable.
    assert assert_problem(draft(client, "software_development"), 409)["errors"][0]["pointer"] == \
        "/variables/contract_number"
    assert counts(client)[:2] == (1, 1)
    assert created(draft(client, "software_development", headers=OTHER_ORG))["id"] != first["id"]


def test_edits_need_the_current_etag_and_make_immutable_versions(backend, start_service):
    client = start(start_service)
    first = created(draft(client, "software_development"))
    cid, url = first["id"], f"/v1/contracts/{first['id']}"
    v1_doc = document(client, cid).content
    assert_problem(client.patch(url, json={"variables": {"project_name": "新名称"}}, headers=LEGAL), 428)
    assert_problem(client.patch(url, json={"variables": {"project_name": "新名称"}}, headers={**LEGAL, "If-Match": '"7"'}),
            412)
    assert_problem(client.patch(url, json={"variables": {"total_price": None}}, headers={**LEGAL, "If-Match": '"1"'}), 422)
    assert counts(client)[:2] == (1, 1)

    patched = client.patch(url, json={"variables": {"project_name": "订单中台二期", "total_price": {
        "amount": "1000000.01", "currency": "CNY"}}, "positions": {"term": "auto_renewal"}, "reason": "price agreed"},
        headers={**LEGAL, "If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    v2 = patched.json()
    assert patched.headers["etag"] == '"2"' and v2["version"] == 2
    assert sum(Decimal(t["amount"]) for t in v2["terms"]["tranches"]) == Decimal("1000000.01")
    assert v2["deviations"] == [{"clause": "term", "kind": "fallback", "position": "auto_renewal", "text": None}]
    # The stale ETag loses, and writes nothing.
    assert_problem(client.put(url, json={"variables": sample(client, "software_development")},
                       headers={**LEGAL, "If-Match": '"1"'}), 412)
    replaced = client.put(url, json={"variables": sample(client, "software_development")},
                          headers={**LEGAL, "If-Match": '"2"'})
    assert replaced.status_code == 200 and replaced.json()["version"] == 3 and replaced.json()["deviations"] == []

    versions = client.get(f"{url}/versions", headers=VIEWER).json()
    assert [v["version"] for v in versions["items"]] == [1, 2, 3] and versions["current"] == 3
    assert versions["items"][1]["reason"] == "price agreed"
    old = client.get(f"{url}/versions/1", headers=VIEWER).json()
    assert old["terms"] == first["terms"] and old["variables"]["project_name"] != "订单中台二期"
    assert document(client, cid, version=1).content == v1_doc
    assert document(client, cid, version=2).content != v1_doc
    assert client.get(url, headers=VIEWER).headers["etag"] == '"3"'
    assert client.get(url, headers=OTHER_ORG).status_code == 404
    assert client.get(f"{url}/versions/9", headers=VIEWER).status_code == 404

    # Out of draft, no edit: 409 naming the state.
    assert client.post(f"{url}/submit", headers=LEGAL).status_code == 200
    refused = assert_problem(client.patch(url, json={"variables": {"project_name": "x"}},
                                   headers={**LEGAL, "If-Match": '"3"'}), 409)
    assert refused["current_state"] == "in_review"
    assert counts(client)[:2] == (1, 3)


def test_risk_checks_report_deviations_and_follow_the_policy_limits(backend, start_service):
    client = start(start_service)
    contract = created(draft(client, "software_development", positions={"term": "auto_renewal"}))
    checks = client.get(f"/v1/contracts/{contract['id']}/checks", headers=VIEWER)
    assert checks.status_code == 200, checks.text
    findings = checks.json()["items"]
    assert any(f["clause"] == "term" for f in findings), findings
    assert all({"id", "severity", "clause", "message", "blocking"} <= set(f) for f in findings)
    # A tighter retention cap of the organisation's policy shows as a finding.
    policy = client.get("/v1/approval-policy", headers=VIEWER).json()
    policy["risk_limits"]["retention_max_percent"] = "0"
    assert client.put("/v1/approval-policy", json=policy, headers=auth("admin")).status_code == 200
    codes = {f["code"] for f in client.get(f"/v1/contracts/{contract['id']}/checks", headers=VIEWER).json()["items"]}
    assert "retention_above_cap" in codes


def test_an_organisations_clause_versions(backend, start_service):
    client = start(start_service)
    clause = client.get("/v1/clauses/confidentiality", headers=VIEWER).json()
    builtin = clause["versions"][-1]
    definition = {"variables": builtin["variables"], "positions": builtin["positions"], "notes": "tightened"}
    definition["positions"][0]["body"]["en"] += "\n\nThis obligation survives termination."
    url = "/v1/clauses/confidentiality/versions"
    assert assert_problem(client.post(url, json={"version": builtin["version"], **definition}, headers=LEGAL), 409)
    assert assert_problem(client.post(url, json={"version": "1.1.0", **definition}, headers=VIEWER), 403)
    unsafe = copy.deepcopy(definition)
    unsafe["positions"][0]["body"]["en"] = "{{ ''.__class__.__mro__ }} {{ unknown_variable }}"
    assert assert_problem(client.post(url, json={"version": "1.1.0", **unsafe}, headers=LEGAL), 422)

    added = client.post(url, json={"version": "1.1.0", **definition}, headers=LEGAL)
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "draft"
    definition["notes"] = "tightened again"
    assert client.put(f"{url}/1.1.0", json=definition, headers=LEGAL).json()["notes"] == "tightened again"
    # A draft version is never drafted from; published, it is, for this organisation only.
    assert created(draft(client, "software_development"))["clause_versions"]["confidentiality"] == builtin["version"]
    assert client.post(f"{url}/1.1.0/publish", headers=LEGAL).json()["status"] == "published"
    assert_problem(client.put(f"{url}/1.1.0", json=definition, headers=LEGAL), 409)
    assert_problem(client.post(f"{url}/1.1.0/publish", headers=LEGAL), 409)
    variables = sample(client, "software_development") | {"contract_number": "NEW-1"}
    mine = created(draft(client, "software_development", "en", variables=variables))
    assert mine["clause_versions"]["confidentiality"] == "1.1.0"
    assert "survives termination" in document(client, mine["id"], "html").text
    theirs = created(draft(client, "software_development", headers=OTHER_ORG))
    assert theirs["clause_versions"]["confidentiality"] == builtin["version"]
    listed = {v["version"]: v["status"] for v in client.get("/v1/clauses/confidentiality", headers=VIEWER)
              .json()["versions"]}
    assert listed == {builtin["version"]: "published", "1.1.0": "published"}

    assert client.post(f"{url}/1.1.0/deprecate", headers=LEGAL).json()["status"] == "deprecated"
    variables["contract_number"] = "NEW-2"
    assert created(draft(client, "software_development", variables=variables))["clause_versions"][
        "confidentiality"] == builtin["version"]
    # The last published version of a clause a template needs cannot be deprecated.
    assert_problem(client.post(f"{url}/{builtin['version']}/deprecate", headers=LEGAL), 409)
    assert client.get(f"/v1/contracts/{mine['id']}", headers=VIEWER).json()["clause_versions"][
        "confidentiality"] == "1.1.0"


def test_a_library_that_does_not_load_is_503_and_the_rest_still_answers(backend, start_service):
    client = start(start_service)

    def broken():
        raise ValueError("library/clauses/x.yaml: not valid YAML")

    client.app.state.catalogue = Catalogue(load=broken)
    body = assert_problem(client.get("/v1/templates", headers=VIEWER), 503)
    assert "not valid YAML" in body["detail"]
    assert_problem(draft(client, "software_development", variables={"contract_number": "X"}), 503)
    assert client.get("/v1/contracts", headers=VIEWER).status_code == 200
    assert counts(client) == (0, 0, 0, 0)


def test_two_edits_of_the_same_version_at_once_one_wins(backend, start_service):
    client = start(start_service)
    cid = created(draft(client, "software_development"))["id"]
    barrier, answers = threading.Barrier(2), []

    def edit(name: str) -> None:
        barrier.wait()
        answers.append(client.patch(f"/v1/contracts/{cid}", json={"variables": {"project_name": name}},
                                    headers={**LEGAL, "If-Match": '"1"'}).status_code)

    threads = [threading.Thread(target=edit, args=(name,)) for name in ("甲方案", "乙方案")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [200, 412]
    assert counts(client)[:2] == (1, 2)
