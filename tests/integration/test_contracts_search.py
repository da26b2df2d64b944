"""Finding contracts: every filter of `GET /v1/contracts`, alone and together, and cursor pagination,
with the same answers on SQLite and PostgreSQL."""
from __future__ import annotations

import copy

import pytest

from tests.helpers import auth

LEGAL, VIEWER, OTHER_ORG = auth("legal", sub="legal-zhang"), auth("viewer"), auth("viewer", org="other-org")
PROBLEM = "application/problem+json"

# (template, language, contract number, client name, total, end date)
CONTRACTS = [
    ("software_development", "zh-CN", "SD-1", "上海澜庭电子商务有限公司", "1200000.00", "2027-06-30"),
    ("software_development", "en", "SD-2", "Northwind Trading Ltd", "80000.50", "2027-01-31"),
    ("call_centre", "zh-CN", "CC-1", "杭州禾链供应链管理有限公司", "2330468.75", "2027-02-28"),
    ("it_operations", "en", "IT-1", "Northwind Logistics 100%_Co", "500000.00", "2028-03-31"),
    ("labour_outsourcing", "zh-CN", "LO-1", "北京远景制造有限公司", "999999.99", "2027-02-27"),
]


def draft_all(client) -> dict[str, str]:
    """number -> contract id, drafted in the order of CONTRACTS."""
    ids = {}
    for key, language, number, client_name, total, end in CONTRACTS:
        variables = copy.deepcopy(client.get(f"/v1/templates/{key}", headers=VIEWER).json()["sample_variables"])
        variables["contract_number"] = number
        variables["client"]["name"] = client_name
        variables["total_price"]["amount"] = total
        variables["end_date"] = end
        response = client.post("/v1/contracts", json={"template": key, "language": language, "variables": variables},
                               headers=LEGAL)
        assert response.status_code == 201, response.text
        ids[number] = response.json()["id"]
    return ids


def numbers(client, headers=VIEWER, **params) -> list[str]:
    response = client.get("/v1/contracts", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["number"] for item in response.json()["items"]]


def test_filters_and_pagination(backend, start_service):
    client = start_service("contracts")
    ids = draft_all(client)
    newest_first = [c[2] for c in reversed(CONTRACTS)]
    assert numbers(client) == newest_first
    assert client.post(f"/v1/contracts/{ids['CC-1']}/submit", headers=LEGAL).status_code == 200

    assert numbers(client, status="in_review") == ["CC-1"]
    assert numbers(client, status=["in_review", "draft"]) == newest_first
    assert numbers(client, kind="software_development") == ["SD-2", "SD-1"]
    assert numbers(client, language="en") == ["IT-1", "SD-2"]
    assert numbers(client, counterparty="northwind") == ["IT-1", "SD-2"]
    assert numbers(client, counterparty="100%_") == ["IT-1"]        # LIKE wildcards are literal
    assert numbers(client, counterparty="禾链") == ["CC-1"]
    assert numbers(client, amount_min="999999.99") == ["LO-1", "CC-1", "SD-1"]
    assert numbers(client, amount_max="999999.99") == ["LO-1", "IT-1", "SD-2"]
    assert numbers(client, amount_min="80000.50", amount_max="80000.50") == ["SD-2"]
    assert numbers(client, expiring_before="2027-02-28") == ["LO-1", "SD-2"]
    assert numbers(client, q="sd-") == ["SD-2", "SD-1"]
    assert numbers(client, q="澜庭电子商务") == ["SD-1"]
    assert numbers(client, q="northwind logistics") == ["IT-1"]
    assert numbers(client, language="zh-CN", amount_min="1000000", q="有限公司") == ["CC-1", "SD-1"]
    assert numbers(client, q="nothing like it") == []
    assert numbers(client, headers=OTHER_ORG) == []

    # Pages of two walk every contract once, in order, the last page without a cursor.
    seen, cursor = [], None
    for _ in range(5):
        page = client.get("/v1/contracts", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=VIEWER).json()
        seen += [item["number"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    filtered = client.get("/v1/contracts", params={"limit": 1, "language": "en"}, headers=VIEWER).json()
    rest = client.get("/v1/contracts", params={"limit": 5, "language": "en", "cursor": filtered["next_cursor"]},
                      headers=VIEWER).json()
    assert [i["number"] for i in filtered["items"] + rest["items"]] == ["IT-1", "SD-2"] and rest["next_cursor"] is None

    item = client.get("/v1/contracts", params={"q": "SD-2"}, headers=VIEWER).json()["items"][0]
    assert item["total_amount"] == "80000.50" and item["client"] == "Northwind Trading Ltd"


def test_bad_filters_are_422_naming_the_parameter(backend, start_service):
    client = start_service("contracts")
    for params, name in (({"status": "lost"}, "status"), ({"cursor": "not-a-cursor"}, "cursor"),
                         ({"amount_min": "lots"}, "amount_min"), ({"expiring_before": "soon"}, "expiring_before"),
                         ({"kind": "catering"}, "kind"), ({"limit": 0}, "limit")):
        response = client.get("/v1/contracts", params=params, headers=VIEWER)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        assert name in {e.get("parameter", "").split(".")[0] for e in response.json()["errors"]}, response.text


def test_short_chinese_terms_and_party_names(backend, start_service):
    """Two- and three-character Chinese terms, a party's name, and bigrams that are all there
    without the term being there (the index narrows, LIKE decides)."""
    client = start_service("contracts")
    draft_all(client)
    assert numbers(client, q="声远") == ["CC-1"]                 # two characters: the vendor
    assert numbers(client, q="禾链") == ["LO-1", "CC-1"]         # a project and a client
    assert numbers(client, q="远景制") == ["LO-1"]               # three characters
    assert numbers(client, q="上海澜") == ["SD-1"]
    assert numbers(client, q="北京远景制造有限公司") == ["LO-1"]   # a party's whole name
    assert numbers(client, counterparty="远景") == ["LO-1"]
    assert numbers(client, q="应链供") == []                     # 应链 and 链供 are in 禾链供应链; 应链供 is not
    assert numbers(client, q="禾") == ["LO-1", "CC-1"]           # one character: no bigram, still found
    assert numbers(client, q="禾链", kind="call_centre") == ["CC-1"]
    page = client.get("/v1/contracts", params={"q": "禾链", "limit": 1}, headers=VIEWER).json()
    rest = client.get("/v1/contracts", params={"q": "禾链", "cursor": page["next_cursor"]}, headers=VIEWER).json()
    assert [i["number"] for i in page["items"] + rest["items"]] == ["LO-1", "CC-1"]


def test_postgres_serves_a_two_character_term_from_the_bigram_index(backend, start_service):
    """Among 5,000 other contracts, PostgreSQL plans a rare 2-character term through
    ix_contracts_search_grams rather than reading the organisation's contracts one by one.
    The filler rows live in a transaction rolled back at the end."""
    if backend != "postgres":
        pytest.skip("SQLite scans; the bigram index is PostgreSQL's")
    from sqlalchemy import MetaData, text

    from services.contracts.adapters.repository import ContractFilter, search_query

    client = start_service("contracts")
    ids = draft_all(client)
    query = search_query("acme", ContractFilter(text="声远"), None, 51, postgres=True)
    engine = client.app.state.runtime.db.reader
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn, conn.begin() as transaction:
        metadata = MetaData()
        metadata.reflect(conn, only=["contracts"])
        copied = {c.name: f"c.{c.name}" for c in metadata.tables["contracts"].columns} | {
            "id": "'filler-' || g", "number": "'F-' || g", "search_text": "'filler ' || g",
            "search_grams": "'{fi,il,ll,le,er}'"}
        conn.execute(text(f"INSERT INTO contracts ({', '.join(copied)}) SELECT {', '.join(copied.values())} "
                          "FROM contracts c CROSS JOIN generate_series(1, 5000) g WHERE c.id = :seed"),
                     {"seed": ids["SD-1"]})
        conn.execute(text("ANALYZE contracts"))
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
        transaction.rollback()
    assert "ix_contracts_search_grams" in plan, plan
