"""`Idempotency-Key` over HTTP: scoped to the user who sent it, never replaying a secret shown once,
and two identical requests racing get one effect and the same answer (SQLite and PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import importlib
import threading

import pytest
from fastapi.testclient import TestClient

from shared.settings import Settings
from tests.helpers import TEST_SECRET, auth

ROUND_THE_CLOCK = {str(d): [["00:00", "24:00"]] for d in range(1, 8)}
HOOK = {"url": "https://hooks.partner.cn/qiyue"}


def _client(service: str, database_url: str) -> TestClient:
    settings = Settings(service=service, environment="test", jwt_secret=TEST_SECRET, database_url=database_url,
                        kafka_bootstrap="127.0.0.1:1")
    app = importlib.import_module(f"services.{service}.app").create(settings, start=False)
    app.state.runtime.migrate()
    if service == "notifications":   # hooks.partner.cn stands for a public name (no DNS here)
        app.state.notifier.webhooks.resolver = lambda host, port: ["93.184.216.34"]
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def notifications(databases):
    return _client("notifications", databases.new("notifications"))


@pytest.fixture
def sla(databases):
    return _client("sla", databases.new("sla"))


def admin(sub: str, key: str) -> dict:
    return {**auth("admin", sub=sub), "Idempotency-Key": key}


def definition(contract_id: str) -> dict:
    return {"contract_id": contract_id, "number": "QY-1", "title": "Service desk", "monthly_fee": "50000.00",
            "effective_date": str(dt.date.today().replace(day=1)), "end_date": "2030-12-31",
            "sla": {"service_hours": {"hours": ROUND_THE_CLOCK}, "metrics": [
                {"key": "fr", "kind": "first_response", "label": "P1 first response", "target": "0.95",
                 "priority": "P1", "time_basis": "calendar"}]}}


def test_another_user_reusing_a_key_gets_its_own_effect(notifications):
    first = notifications.post("/v1/webhook-endpoints", json=HOOK, headers=admin("ann", "k-1"))
    other = notifications.post("/v1/webhook-endpoints", json=HOOK, headers=admin("bob", "k-1"))
    assert first.status_code == other.status_code == 201, other.text
    assert other.json()["id"] != first.json()["id"] and other.json()["created_by"] == "bob"
    assert other.json()["secret"] != first.json()["secret"]             # never ann's secret
    assert notifications.post("/v1/webhook-endpoints", json=HOOK, headers=admin("ann", "k-1")).json()["id"] \
        == first.json()["id"]                                            # ann's own retry is still a replay
    assert len(notifications.get("/v1/webhook-endpoints", headers=auth("admin")).json()["items"]) == 2


def test_another_users_key_with_another_body_is_no_conflict(sla):
    assert sla.post("/v1/sla/definitions", json=definition("c-1"), headers=admin("ann", "k-1")).status_code == 201
    response = sla.post("/v1/sla/definitions", json=definition("c-2"), headers=admin("bob", "k-1"))
    assert response.status_code == 201, response.text
    assert sla.post("/v1/sla/definitions", json=definition("c-3"), headers=admin("ann", "k-1")).status_code == 422


def test_a_replay_answers_without_the_secret_shown_once(notifications):
    first = notifications.post("/v1/webhook-endpoints", json=HOOK, headers=admin("ann", "k-1"))
    assert first.status_code == 201 and first.json()["secret"].startswith("whsec_")
    replay = notifications.post("/v1/webhook-endpoints", json=HOOK, headers=admin("ann", "k-1"))
    assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
    assert "secret" not in replay.json() and first.json()["secret"] not in replay.text


def test_a_lost_secret_is_rotated_and_the_new_one_shown_once(notifications):
    created = notifications.post("/v1/webhook-endpoints", json=HOOK, headers=admin("ann", "k-1")).json()
    rotate = f"/v1/webhook-endpoints/{created['id']}/rotate-secret"
    first, second = (notifications.post(rotate, headers=auth("admin")) for _ in range(2))
    assert first.status_code == second.status_code == 200, first.text
    secrets = {created["secret"], first.json()["secret"], second.json()["secret"]}
    assert len(secrets) == 3 and all(s.startswith("whsec_") for s in secrets)
    shown = notifications.get(f"/v1/webhook-endpoints/{created['id']}", headers=auth("admin"))
    assert shown.status_code == 200 and "secret" not in shown.json()
    assert notifications.post(rotate, headers=auth("admin", org="globex")).status_code == 404


def _race(post, n: int = 4) -> list:
    """`n` threads send the same request at once (a barrier lines them up)."""
    barrier, answers = threading.Barrier(n), [None] * n

    def send(i: int) -> None:
        barrier.wait()
        answers[i] = post()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_identical_concurrent_creates_answer_one_stored_response(notifications):
    answers = _race(lambda: notifications.post("/v1/webhook-endpoints", json=HOOK, headers=admin("ann", "k-race")))
    assert [a.status_code for a in answers] == [201] * len(answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(notifications.get("/v1/webhook-endpoints", headers=auth("admin")).json()["items"]) == 1


def test_identical_concurrent_definitions_answer_one_stored_response(sla):
    body = definition("c-race")
    answers = _race(lambda: sla.post("/v1/sla/definitions", json=body, headers=admin("ann", "k-race")))
    assert [a.status_code for a in answers] == [201] * len(answers), [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
