"""Every operation of every service, fuzzed from its own OpenAPI document (issue 16).

Schemathesis generates requests that fit the schema and requests that break it, for each operation,
and sends them in-process to the app (SQLite in tmp_path, no broker) with a token holding every
role. Whatever arrives, the answer is never a 5xx, and every 4xx is an RFC 9457 problem (media
type application/problem+json, with `status` and `title`). Generation is seeded (derandomize), so
a run is repeatable and a failure comes back the same way.

Path parameters are sometimes swapped for the id of a resource the test created first, so the
fuzz reaches past "not found" into the real handlers.
"""
from __future__ import annotations

import datetime as dt
import importlib
import json
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis import GenerationMode

from services.contracts.adapters.library_files import load_library
from services.notifications import service_layer as service_layer_notifications
from services.notifications.adapters.notifier import Notifier
from services.notifications.settings import NotificationSettings
from services.payments import service_layer
from shared.auth import ROLES
from shared.envelope import Envelope
from shared.events.payments import PaymentOverdue
from shared.local_time import local_date
from shared.settings import Settings
from shared.uow import utcnow
from tests.helpers import TEST_SECRET, auth
from tests.unit.test_payments_domain import software_development_terms

# Examples per operation and generation mode: a few hundred cases per service, well under a minute
# each on a busy 2-core machine.
EXAMPLES = {"contracts": 7, "payments": 14, "sla": 25, "notifications": 16}
# Operations left out, and why.
LEFT_OUT = {
    # An event stream answers 200 and keeps the request open by design; its input errors are tested in
    # tests/integration/test_sla_stream.py.
    ("sla", "GET", "/v1/stream"),
}
# SLA operations whose fuzz fails only on inputs another change validates (periods, time zones,
# 25:00, weekday "9", years 1/9999, offered 10**30): skipped until that change is merged.
AWAITING_SLA_INPUT_VALIDATION: set[tuple[str, str, str]] = set()

ORG = "fuzz-org"
ALL_ROLES = auth(*ROLES, org=ORG)


def _app(service: str, tmp_path):
    values = dict(service=service, environment="test", jwt_secret=TEST_SECRET,
                  database_url=f"sqlite:///{tmp_path / service}.db", kafka_bootstrap="127.0.0.1:1")
    # The seeded webhook endpoint is on loopback: this machine resolves no other name.
    settings = NotificationSettings(**values, allow_private_webhooks=True) if service == "notifications" \
        else Settings(**values)
    app = importlib.import_module(f"services.{service}.app").create(settings, start=False)
    app.state.runtime.migrate()
    return app


@dataclass
class Finding:
    operation: str
    status: int
    detail: str
    request: str = ""


@dataclass
class Fuzz:
    service: str
    known_ids: dict[str, list[str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    cases: int = 0


def _check(response, operation: str) -> Finding | None:
    """None when the answer is acceptable; otherwise what is wrong with it."""
    status = response.status_code
    if status >= 500:
        return Finding(operation, status, response.text[:300])
    if status >= 400:
        media_type = (response.headers.get("content-type") or [""])[0]   # lowercase keys, list values
        if not media_type.startswith("application/problem+json"):
            return Finding(operation, status, f"not problem+json: {media_type}: {response.text[:200]}")
        body = response.json()
        if body.get("status") != status or not body.get("title"):
            return Finding(operation, status, f"problem without status/title: {response.text[:200]}")
    return None


def _fuzz_operation(fuzz: Fuzz, operation, examples: int) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))
    in_path = {p.name: fuzz.known_ids[p.name] for p in operation.path_parameters if fuzz.known_ids.get(p.name)}
    seen: list[Finding] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy, data=st.data())
    def run(case, data):
        if data.draw(st.booleans(), label="aim at created resources"):
            _aim(case, fuzz.known_ids, in_path, data)
        fuzz.cases += 1
        response = case.call(headers=ALL_ROLES)
        finding = _check(response, label)
        if finding is not None and len(seen) < 3:
            finding.request = case.as_curl_command()[:600]
            seen.append(finding)

    run()
    fuzz.findings.extend(seen)


def _aim(case, known_ids: dict[str, list[str]], in_path: dict[str, list[str]], data) -> None:
    """Point the case's ids (path parameters, and ids in the body and its items) at created resources."""
    if in_path:
        case.path_parameters = {**(case.path_parameters or {}),
                                **{name: data.draw(st.sampled_from(ids), label=name) for name, ids in in_path.items()}}
    body = case.body if isinstance(case.body, dict) else None
    if body is None:
        return
    targets = [body] + [item for item in body.get("items", []) if isinstance(item, dict)] \
        if isinstance(body.get("items", []), list) else [body]
    for target in targets:
        for name in [n for n in target if known_ids.get(n)]:
            target[name] = data.draw(st.sampled_from(known_ids[name]), label=name)


def _fuzz(service: str, tmp_path) -> Fuzz:
    app = _app(service, tmp_path)
    fuzz = Fuzz(service, known_ids=SEEDS[service](TestClient(app, raise_server_exceptions=False)))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (service, operation.method.upper(), operation.path)
        if key in LEFT_OUT or key in AWAITING_SLA_INPUT_VALIDATION:
            continue
        _fuzz_operation(fuzz, operation, EXAMPLES[service])
    return fuzz


# --- resources the fuzz reaches through their ids -------------------------------------------------

def _as(sub: str, *roles: str) -> dict[str, str]:
    return auth(*(roles or ROLES), org=ORG, sub=sub)


def _created(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _seed_contracts(client) -> dict[str, list[str]]:
    """A draft, and a signed contract with a change request raised on it."""
    variables = json.loads(json.dumps(load_library().template("software_development").sample_variables, default=str))
    draft_id, signed_id = (_created(client.post("/v1/contracts", headers=_as("author", "legal"), json={
        "template": "software_development", "language": "zh-CN",
        "variables": {**variables, "contract_number": f"QY-FUZZ-{n}"}}))["id"] for n in (1, 2))
    for command, who, body in (("submit", _as("author", "legal"), None), ("approve", _as("legal-2", "legal"), None),
                               ("approve", _as("finance-1", "finance"), None),
                               ("request-signature", _as("author", "legal"), None),
                               ("sign", _as("legal-2", "legal"), {"party": "client", "signatory": "陈立新"}),
                               ("sign", _as("vendor-1", "vendor"), {"party": "vendor", "signatory": "周敏"})):
        _created(client.post(f"/v1/contracts/{signed_id}/{command}", headers=who, json=body))
    change = _created(client.post(f"/v1/contracts/{signed_id}/change-requests", headers=_as("pm-1", "pm"), json={
        "title": "end later", "description": "one more year", "reason": "the client asked for it",
        "kinds": ["schedule"], "changes": {"dates": {"end_date": "2027-12-31"}}, "submit": True}))
    clause = client.get("/v1/clauses", headers=ALL_ROLES).json()["items"][0]["key"]
    return {"contract_id": [draft_id, signed_id], "request_id": [change["id"]],
            "key": ["software_development", clause], "number": ["1", "2"]}


def _seed_payments(client) -> dict[str, list[str]]:
    """The schedule a signed software development contract leaves, an invoice and a calendar feed."""
    runtime, now = client.app.state.runtime, utcnow()
    contract_id = "c-fuzz-1"
    service_layer.create_schedule(runtime.uow(), software_development_terms(contract_id=contract_id, org=ORG),
                                  local_date(now), now)
    schedule = _created(client.get(f"/v1/payment-schedules/{contract_id}", headers=ALL_ROLES))
    signing = next(t for t in schedule["tranches"] if t["key"] == "signing")
    invoice = _created(client.post(f"/v1/payment-schedules/{contract_id}/invoices", headers=ALL_ROLES,
                                   json={"tranche_id": signing["id"]}))
    feed = _created(client.post("/v1/calendar-feeds", headers=ALL_ROLES, json={"name": "finance"}))
    return {"contract_id": [contract_id], "key": ["requirements_confirmed", "final_acceptance"],
            "tranche_id": [t["id"] for t in schedule["tranches"]],
            "invoice_id": [invoice["id"]], "feed_id": [feed["id"]]}


def _seed_sla(client) -> dict[str, list[str]]:
    """A call-centre SLA definition with one ticket timer."""
    today = utcnow().date()
    contract_id = "c-fuzz-sla"
    _created(client.post("/v1/sla/definitions", headers=ALL_ROLES, json={
        "contract_id": contract_id, "version": 1, "number": "QY-FUZZ", "title": "Helpdesk", "monthly_fee": "100000.00",
        "effective_date": str(today.replace(day=1)), "end_date": "2030-12-31",
        "sla": {"service_hours": {"hours": {str(d): [["09:00", "18:00"]] for d in range(1, 6)}},
                "credit_cap_share": "0.15",
                "metrics": [{"key": "fr", "kind": "first_response", "label": "first response", "target": "30",
                             "priority": "P1", "time_basis": "business"}]}}))
    return {"contract_id": [contract_id], "period": [f"{today:%Y-%m}"]}


def _seed_notifications(client) -> dict[str, list[str]]:
    """A subscription, a webhook endpoint, and the delivery and inbox item an event left."""
    endpoint = _created(client.post("/v1/webhook-endpoints", headers=ALL_ROLES,
                                    json={"url": "http://127.0.0.1:9/qiyue"}))
    mail = _created(client.post("/v1/subscriptions", headers=ALL_ROLES, json={
        "event_types": ["payment.*"], "recipient": {"kind": "email", "address": "pm@example.com"}}))
    _created(client.post("/v1/subscriptions", headers=ALL_ROLES, json={
        "event_types": ["*"], "recipient": {"kind": "user", "user": "user-1"}}))
    event = PaymentOverdue(contract_id="c-fuzz-1", org=ORG, tranche_id="t-1", tranche_key="signing",
                           amount=Decimal("370370.37"), currency="CNY", due_date=dt.date(2026, 9, 11),
                           overdue_since=dt.date(2026, 9, 12))
    service_layer_notifications.fan_out(Notifier(), client.app.state.runtime.uow(),
                                        Envelope.new(event, "/qiyue/payments"))
    delivery = client.get("/v1/deliveries", headers=ALL_ROLES).json()["items"][0]
    item = client.get("/v1/inbox", headers=ALL_ROLES).json()["items"][0]
    return {"subscription_id": [mail["id"]], "endpoint_id": [endpoint["id"]], "delivery_id": [delivery["id"]],
            "item_id": [item["id"]]}


SEEDS = {"contracts": _seed_contracts, "payments": _seed_payments, "sla": _seed_sla,
         "notifications": _seed_notifications}


def _report(fuzz: Fuzz) -> str:
    return "\n".join(f"{f.operation} -> {f.status}: {f.detail}\n    {f.request}" for f in fuzz.findings)


@pytest.mark.parametrize("service", ["contracts", "payments", "sla", "notifications"])
def test_fuzzed_requests_never_answer_5xx_and_errors_are_problems(service, tmp_path):
    fuzz = _fuzz(service, tmp_path)
    assert fuzz.cases >= 150, f"only {fuzz.cases} cases were sent: the fuzz would prove little"
    assert not fuzz.findings, f"{len(fuzz.findings)} bad answers from {service}:\n{_report(fuzz)}"
