"""Bad input costs no more than its size and never answers 500 (issue 16): request bodies are
capped, money stays within what a contract can write out, control characters never reach a
document, file names in any script download, a late-fee statement is bounded, and an error raised
past every handler still answers with its request id."""
from __future__ import annotations

import io
import json
import logging
from urllib.parse import unquote

from shared.events.contracts import ContractSigned
from shared.logs import JsonFormatter
from tests.helpers import auth, wait_until
from tests.integration.test_contracts_drafting import LEGAL, VIEWER, counts, draft, sample
from tests.integration.test_payments_service import Contracts, morning, set_clock
from tests.unit.test_payments_domain import software_development_terms

PROBLEM = "application/problem+json"
TEMPLATE = "software_development"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def pointers(body: dict) -> set[str]:
    return {e.get("pointer") or e.get("parameter") for e in body.get("errors") or ()}


# --- the body cap ------------------------------------------------------------------------------

def test_a_body_over_the_cap_is_refused_whole_with_413_and_writes_nothing(start_service):
    client = start_service("contracts", max_body_bytes=64 * 1024)
    before = counts(client)
    variables = sample(client, TEMPLATE)
    variables["software_scope"] = "需求" * 40_000   # 80,000 characters, 240 KB of UTF-8
    big = json.dumps({"template": TEMPLATE, "language": "zh-CN", "variables": variables}).encode()

    declared = client.post("/v1/contracts", content=big, headers={**LEGAL, "content-type": "application/json",
                                                                  "x-request-id": "rid-413"})
    assert "65536 bytes" in problem(declared, 413)["detail"]
    assert declared.headers["x-request-id"] == "rid-413"

    def chunks():   # no Content-Length: the streamed bytes are counted
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    streamed = client.post("/v1/contracts", content=chunks(), headers={**LEGAL, "content-type": "application/json"})
    problem(streamed, 413)
    assert counts(client) == before
    assert draft(client, TEMPLATE).status_code == 201   # a body under the cap goes through


def test_the_default_cap_is_one_mebibyte(start_service):
    client = start_service("notifications")
    assert client.app.state.settings.max_body_bytes == 1024 * 1024
    body = b'{"url": "' + b"a" * (1024 * 1024) + b'"}'
    problem(client.post("/v1/webhook-endpoints", content=body,
                        headers={**auth("admin"), "content-type": "application/json"}), 413)


# --- contracts: money, control characters, file names --------------------------------------------

def test_a_total_beyond_what_words_can_write_is_a_422_naming_the_field(start_service):
    client = start_service("contracts")
    before = counts(client)
    variables = sample(client, TEMPLATE)
    variables["total_price"]["amount"] = "1000000000000.00"
    assert "/variables/total_price/amount" in pointers(problem(draft(client, TEMPLATE, variables=variables), 422))
    variables["total_price"]["amount"] = "999999999999.99"
    assert draft(client, TEMPLATE, variables=variables).status_code == 201
    assert counts(client)[0] == before[0] + 1


def test_a_contract_number_with_control_characters_is_a_422(start_service):
    client = start_service("contracts")
    before = counts(client)
    for number in ("JC\x00-2026-01", "JC-2026\x07-01", "JC-2026-01\x1b", "JC-2026\n-01", "JC\u0085-01"):
        variables = sample(client, TEMPLATE)
        variables["contract_number"] = number
        body = problem(draft(client, TEMPLATE, variables=variables), 422)
        assert "/variables/contract_number" in pointers(body), (number, body)
    variables = sample(client, TEMPLATE)
    variables["project_name"] = "项目\x00名称"
    assert "/variables/project_name" in pointers(problem(draft(client, TEMPLATE, variables=variables), 422))
    assert counts(client) == before


def test_custom_wording_with_control_characters_is_a_422(start_service):
    client = start_service("contracts")
    positions = {"confidentiality": {"custom": {"zh-CN": "保密\x00条款", "en": "Confidential"}}}
    body = problem(draft(client, TEMPLATE, positions=positions), 422)
    assert "/positions/confidentiality" in pointers(body), body


def test_a_chinese_contract_number_downloads_with_an_rfc_6266_file_name(start_service):
    client = start_service("contracts")
    variables = sample(client, TEMPLATE)
    number = "禾链采〔2026〕015号"
    variables["contract_number"] = number
    created = draft(client, TEMPLATE, variables=variables)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    document = client.get(f"/v1/contracts/{cid}/document", headers=VIEWER)
    assert document.status_code == 200, document.text
    assert_file_name(document.headers["content-disposition"], f"{number}-v1.docx")

    edited = client.patch(f"/v1/contracts/{cid}", json={"variables": {"project_name": "改名"}},
                          headers={**LEGAL, "If-Match": created.headers["etag"]})
    assert edited.status_code == 200, edited.text
    redline = client.get(f"/v1/contracts/{cid}/compare", params={"from": 1, "to": 2, "format": "docx"},
                         headers=VIEWER)
    assert redline.status_code == 200, redline.text
    assert_file_name(redline.headers["content-disposition"], f"{number}-v1-v2-redline.docx")


def assert_file_name(header: str, name: str) -> None:
    header.encode("latin-1")   # what a header can carry
    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.endswith(name.rsplit(".", 1)[1])
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == name


# --- payments: the late-fee statement --------------------------------------------------------------

def test_a_late_fee_statement_far_in_the_future_is_a_422(start_service, broker, topic_prefix):
    client = start_service("payments")
    set_clock(client, morning("2026-09-01"))
    terms = software_development_terms(contract_id="c-bounds-1")
    Contracts(broker, topic_prefix).publish(ContractSigned(contract_id=terms.contract_id, org="acme", version=1,
                                                           terms=terms), morning("2026-09-01"))
    fees = f"/v1/payment-schedules/{terms.contract_id}/late-fees"
    wait_until(lambda: client.get(fees, headers=VIEWER).status_code == 200, message="schedule built")
    body = problem(client.get(fees, params={"as_of": "9999-12-31"}, headers=VIEWER), 422)
    assert "as_of" in pointers(body)
    # the first due date is 2026-09-11: ten years on is still answered
    assert client.get(fees, params={"as_of": "2036-09-01"}, headers=VIEWER).status_code == 200


# --- a 500 keeps its request id ------------------------------------------------------------------

def test_an_error_past_every_handler_answers_500_with_its_request_id_and_logs_it(start_service):
    client = start_service("notifications")

    def boom():
        raise RuntimeError("the route failed")

    client.app.add_api_route("/boom", boom)
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(JsonFormatter("notifications"))
    logging.getLogger("qiyue.errors").addHandler(handler)
    try:
        response = client.get("/boom", headers={"x-request-id": "rid-500"})
    finally:
        logging.getLogger("qiyue.errors").removeHandler(handler)
    body = problem(response, 500)
    assert "the route failed" not in response.text and body["detail"]
    assert response.headers["x-request-id"] == "rid-500"
    entries = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert [e.get("request_id") for e in entries] == ["rid-500"] and "RuntimeError" in entries[0]["exc"]


# --- contracts: the clause rendering budget ---------------------------------------------------------

DOUBLING = "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"


def clause_definition(client, extra_body: str, extra_variables=()) -> dict:
    builtin = client.get("/v1/clauses/confidentiality", headers=VIEWER).json()["versions"][-1]
    definition = {"variables": builtin["variables"] + list(extra_variables), "positions": builtin["positions"]}
    for language in ("zh-CN", "en"):
        definition["positions"][0]["body"][language] += "\n\n" + extra_body
    return definition


def test_a_clause_over_the_rendering_budget_is_refused_at_publish(start_service):
    client = start_service("contracts")
    url = "/v1/clauses/confidentiality/versions"
    added = client.post(url, json={"version": "1.2.0", **clause_definition(client, DOUBLING)}, headers=LEGAL)
    assert added.status_code == 201, added.text   # a draft may be anything the static checks allow
    refused = problem(client.post(f"{url}/1.2.0/publish", headers=LEGAL), 422)
    assert "rendering budget" in refused["detail"] and "1.2.0" in refused["detail"]
    statuses = {v["version"]: v["status"] for v in client.get("/v1/clauses/confidentiality", headers=VIEWER)
                .json()["versions"]}
    assert statuses["1.2.0"] == "draft"


def test_a_clause_over_the_rendering_budget_with_the_drafts_values_is_refused_at_render(start_service):
    client = start_service("contracts")
    url = "/v1/clauses/confidentiality/versions"
    quadratic = "{% for a in project_name %}{% for b in project_name %}{% endfor %}{% endfor %}"
    declared = {"name": "project_name", "type": "text", "label": {"zh-CN": "项目名称", "en": "Project name"}}
    definition = clause_definition(client, quadratic, [declared])
    assert client.post(url, json={"version": "1.3.0", **definition}, headers=LEGAL).status_code == 201
    published = client.post(f"{url}/1.3.0/publish", headers=LEGAL)   # one character per stand-in: fine
    assert published.status_code == 200, published.text
    assert draft(client, TEMPLATE, "en").status_code == 201          # the sample's name: fine
    before = counts(client)
    variables = sample(client, TEMPLATE) | {"contract_number": "BUDGET-1", "project_name": "P" * 400}
    refused = problem(draft(client, TEMPLATE, "en", variables=variables), 422)   # 160,000 loop turns
    assert "rendering budget" in refused["detail"] and "loops more than" in refused["detail"]
    assert counts(client) == before
