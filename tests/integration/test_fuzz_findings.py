"""What the OpenAPI fuzz (test_fuzz_openapi.py) found, one small test each, so a finding stays fixed
even when the fuzz's seeded examples move on."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from shared.auth import INTERNAL_ROLES
from tests.helpers import auth
from tests.integration import seeded_resources

ORG = "acme"
EVERY_ROLE = auth(*INTERNAL_ROLES, org=ORG)


@pytest.fixture
def payments(tmp_path):
    client = TestClient(seeded_resources.migrated_app("payments", tmp_path), raise_server_exceptions=False)
    seeded_resources.seed("payments", client, ORG)
    return client


@pytest.mark.parametrize("report", ["/v1/reports/aging", "/v1/reports/aging.csv"])
@pytest.mark.parametrize("as_of", ["0001-01-01", "0001-03-31", "9999-12-31"])
def test_an_aging_report_as_of_the_first_or_last_day_of_the_calendar_answers(payments, report, as_of):
    """Was a 500: the buckets' cutoffs (30, 60, 90 days before `as_of`) fell before year 1."""
    answer = payments.get(report, params={"as_of": as_of}, headers=EVERY_ROLE)
    assert answer.status_code == 200, answer.text
    if report.endswith(".csv"):
        assert f"{as_of},TOTAL" in answer.text
    else:
        assert answer.json()["as_of"] == as_of


@pytest.mark.parametrize("service", ["contracts", "payments", "sla", "notifications"])
def test_dead_letters_with_the_broker_away_answer_503_instead_of_hanging(service, tmp_path):
    """Found by the fuzz: `GET /v1/admin/dead-letters` waited forever for broker metadata."""
    client = TestClient(seeded_resources.migrated_app(service, tmp_path), raise_server_exceptions=False)
    for method, path in (("GET", "/v1/admin/dead-letters"), ("POST", "/v1/admin/dead-letters/redrive")):
        response = client.request(method, path, headers=auth("admin", org=ORG))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
