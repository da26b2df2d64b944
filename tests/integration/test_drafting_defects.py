"""Drafting defects of issue 17, each through the API: a change request that switches a clause to a
library position; each language's own sample variables; an amendment that prints dates, shares and
quotation marks the way the contract does."""
from __future__ import annotations

import io
import re

import pytest
from docx import Document

from tests.integration.test_change_requests import (AUTHOR, FINANCE, PM, RAISER, REVIEWER, VENDOR, VIEWER, assess,
                                                    created, raise_request)
from tests.helpers import auth
from tests.integration.test_contracts_lifecycle import assert_problem, ok

APPROVER = auth("approver", sub="approver-li")

LANGUAGES = ("zh-CN", "en")


def samples(contracts, template: str, language: str) -> dict:
    answer = ok(contracts.get(f"/v1/templates/{template}?language={language}", headers=VIEWER))
    return answer["sample_variables"]


def signed(contracts, language: str, positions: dict | None = None, template: str = "software_development") -> str:
    """A sample contract in `language`, drafted in the given positions, approved (legal, then finance
    above 1m) and signed."""
    drafted = contracts.post("/v1/contracts", headers=AUTHOR, json={
        "template": template, "language": language, "variables": samples(contracts, template, language),
        "positions": positions or {}})
    assert drafted.status_code == 201, drafted.text
    cid = drafted.json()["id"]
    ok(contracts.post(f"/v1/contracts/{cid}/submit", headers=AUTHOR))
    ok(contracts.post(f"/v1/contracts/{cid}/approve", headers=REVIEWER))
    decided = ok(contracts.post(f"/v1/contracts/{cid}/approve", headers=FINANCE))
    if positions:   # a departure from the standard clauses needs an approver too
        decided = ok(contracts.post(f"/v1/contracts/{cid}/approve", headers=APPROVER))
    assert decided["status"] == "approved"
    ok(contracts.post(f"/v1/contracts/{cid}/request-signature", headers=AUTHOR))
    ok(contracts.post(f"/v1/contracts/{cid}/sign", headers=REVIEWER, json={"party": "client", "signatory": "陈立新"}))
    ok(contracts.post(f"/v1/contracts/{cid}/sign", headers=VENDOR, json={"party": "vendor", "signatory": "周敏"}))
    return cid


# --- a. a change request to a library position ------------------------------------------------------

@pytest.mark.parametrize(("drafted_in", "switch_to"), [({}, "no_convenience"),
                                                       ({"termination": "no_convenience"}, "standard")])
def test_a_change_request_switches_a_clause_to_a_library_position(start_service, drafted_in, switch_to):
    contracts = start_service("contracts")
    cid = signed(contracts, "zh-CN", drafted_in)
    request = created(raise_request(contracts, cid, {"clauses": {"termination": {"position": switch_to}}},
                                    ["terms"], "Termination position"))
    assess(contracts, request["id"], "0.00")
    ok(contracts.post(f"/v1/change-requests/{request['id']}/approve", headers=PM))
    ok(contracts.post(f"/v1/change-requests/{request['id']}/approve", headers=REVIEWER))
    version = ok(contracts.post(f"/v1/change-requests/{request['id']}/implement", headers=REVIEWER))
    amended = ok(contracts.get(f"/v1/contracts/{cid}/versions/{version['implemented_version']}", headers=VIEWER))
    deviations = {d["clause"]: d["position"] for d in amended["deviations"]}
    assert deviations == ({} if switch_to == "standard" else {"termination": switch_to})


def test_an_unknown_position_names_the_field_the_caller_sent(start_service):
    contracts = start_service("contracts")
    cid = signed(contracts, "zh-CN")
    problem = assert_problem(raise_request(contracts, cid, {"clauses": {"termination": {"position": "bogus"}}},
                                           ["terms"], "Termination position"), 422)
    assert [e["pointer"] for e in problem["errors"]] == ["/changes/clauses/termination/position"]
    assert "no_convenience" in problem["errors"][0]["detail"]


# --- b. each language its own samples ---------------------------------------------------------------

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")   # Chinese characters and full-width punctuation


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_each_language_has_its_own_sample_variables(start_service):
    contracts = start_service("contracts")
    keys = sorted({t["key"] for t in ok(contracts.get("/v1/templates", headers=VIEWER))["items"]})
    assert keys
    for key in keys:
        english, chinese = samples(contracts, key, "en"), samples(contracts, key, "zh-CN")
        assert [s for s in _strings(english) if CJK.search(s)] == [], key
        assert english["client"]["name"] != chinese["client"]["name"] and CJK.search(chinese["client"]["name"])
        # the same contract in figures: only the words differ
        assert english["total_price"] == chinese["total_price"] and english["end_date"] == chinese["end_date"]
        drafted = contracts.post("/v1/contracts", headers=AUTHOR,
                                 json={"template": key, "language": "en", "variables": english})
        assert drafted.status_code == 201, drafted.text
        checks = ok(contracts.get(f"/v1/contracts/{drafted.json()['id']}/checks", headers=VIEWER))
        assert checks["items"] == [], (key, checks["items"])


# --- c. an amendment prints dates, shares and quotation marks as the contract does --------------------

# A new price with the acceptance tranche moved by amount: the tranches' percentages are derived from
# the amounts (8.8785046728972...), and new wording for confidentiality typed with straight quotes.
CUSTOM = {"zh-CN": '本合同所称"保密信息"，指一方在履行本合同过程中获知的对方的商业秘密及其他非公开信息。',
          "en": 'In this Agreement, "Confidential Information" means the trade secrets and other non-public '
                "information of a party that the other party learns in performing this Agreement."}
AMENDING = {"total_price": "1386000.00", "tranches": [{"key": "acceptance", "amount": "550100.00"}],
            "clauses": {"confidentiality": {"custom": CUSTOM}}}
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
LONG_PERCENT = re.compile(r"\d\.\d{3,}\s*%")
PROSE_DATE = {"zh-CN": re.compile(r"于\d{4}年\d{1,2}月\d{1,2}日签订"),
              "en": re.compile(r" on \d{1,2} (?:January|February|March|April|May|June|July|August|September|"
                               r"October|November|December) \d{4} entered into")}


def _docx_texts(content: bytes) -> list[str]:
    document = Document(io.BytesIO(content))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return [p.text for p in document.paragraphs] + cells


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_amendment_prints_dates_shares_and_quotes_as_the_contract_does(start_service, language):
    contracts = start_service("contracts")
    cid = signed(contracts, language)
    request = created(raise_request(contracts, cid, AMENDING, ["price", "terms"], "Reporting module"))
    assess(contracts, request["id"], "100000.00")
    ok(contracts.post(f"/v1/change-requests/{request['id']}/approve", headers=PM))
    while ok(contracts.get(f"/v1/change-requests/{request['id']}", headers=VIEWER))["status"] != "approved":
        ok(contracts.post(f"/v1/change-requests/{request['id']}/approve", headers=REVIEWER))
    ok(contracts.post(f"/v1/change-requests/{request['id']}/implement", headers=REVIEWER))

    amendment = contracts.get(f"/v1/change-requests/{request['id']}/amendment?format=docx", headers=VIEWER)
    assert amendment.status_code == 200, amendment.text
    texts = _docx_texts(amendment.content)
    prose = "\n".join(texts)
    assert PROSE_DATE[language].search(prose), prose[:400]
    assert ISO_DATE.findall(prose) == []
    assert LONG_PERCENT.findall(prose) == []
    assert re.search(r"\d+(?:\.\d{1,2})?%", prose)            # the tranche table still shows the shares
    assert [t for t in texts if '"' in t] == []               # one style of quotes: curly
    assert "“" in prose and "”" in prose
