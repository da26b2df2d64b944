"""Resources of each service created for one organisation, and the ids they answer to.

The fuzz (test_fuzz_openapi.py) aims its path parameters at them so it reaches past "not found";
the authorisation walk (test_auth_every_endpoint.py) asks for them as another organisation.
Keyed by path parameter name, so a route's `{contract_id}` finds a contract of its own service.
"""
from __future__ import annotations

import datetime as dt
import importlib
import json
from decimal import Decimal

from services.contracts.adapters.library_files import load_library
from services.notifications import service_layer as notifications_service_layer
from services.notifications.adapters.notifier import Notifier
from services.notifications.settings import NotificationSettings
from services.payments import service_layer as payments_service_layer
from shared.auth import INTERNAL_ROLES
from shared.envelope import Envelope
from shared.events.payments import PaymentOverdue
from shared.local_time import local_date
from shared.settings import Settings
from shared.uow import utcnow
from tests.helpers import TEST_SECRET, auth
from tests.unit.test_payments_domain import software_development_terms


def migrated_app(service: str, tmp_path):
    """The service's app on a fresh SQLite file, migrated, not started (no broker, no loops)."""
    values = dict(service=service, environment="test", jwt_secret=TEST_SECRET,
                  database_url=f"sqlite:///{tmp_path / service}.db", kafka_bootstrap="127.0.0.1:1")
    # The seeded webhook endpoint is on loopback: this machine resolves no other name.
    settings = NotificationSettings(**values, allow_private_webhooks=True) if service == "notifications" \
        else Settings(**values)
    app = importlib.import_module(f"services.{service}.app").create(settings, start=False)
    app.state.runtime.migrate()
    return app


def _as(org: str, sub: str = "user-1", *roles: str) -> dict[str, str]:
    return auth(*(roles or INTERNAL_ROLES), org=org, sub=sub)


def _created(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def contracts(client, org: str) -> dict[str, list[str]]:
    """A draft, and a signed contract with a change request raised on it."""
    variables = json.loads(json.dumps(load_library().template("software_development").sample_variables, default=str))
    draft_id, signed_id = (_created(client.post("/v1/contracts", headers=_as(org, "author", "legal"), json={
        "template": "software_development", "language": "zh-CN",
        "variables": {**variables, "contract_number": f"QY-{org}-{n}"}}))["id"] for n in (1, 2))
    author, reviewer = _as(org, "author", "legal"), _as(org, "legal-2", "legal")
    for command, who, body in (("submit", author, None), ("approve", reviewer, None),
                               ("approve", _as(org, "finance-1", "finance"), None), ("request-signature", author, None),
                               ("sign", reviewer, {"party": "client", "signatory": "陈立新"}),
                               ("sign", auth("vendor", org=org, sub="vendor-1", party=variables["vendor"]["credit_code"]),
                                {"party": "vendor", "signatory": "周敏"})):
        _created(client.post(f"/v1/contracts/{signed_id}/{command}", headers=who, json=body))
    change = _created(client.post(f"/v1/contracts/{signed_id}/change-requests", headers=_as(org, "pm-1", "pm"), json={
        "title": "end later", "description": "one more year", "reason": "the client asked for it",
        "kinds": ["schedule"], "changes": {"dates": {"end_date": "2027-12-31"}}, "submit": True}))
    builtin = client.get("/v1/clauses/confidentiality", headers=_as(org)).json()["versions"][-1]
    _created(client.post("/v1/clauses/confidentiality/versions", headers=author, json={   # the organisation's own
        "version": "9.1.0", "variables": builtin["variables"], "positions": builtin["positions"], "notes": "ours"}))
    return {"contract_id": [draft_id, signed_id], "request_id": [change["id"]],
            "key": ["software_development", "confidentiality"], "number": ["1", "2", "9.1.0"]}


def payments(client, org: str) -> dict[str, list[str]]:
    """The schedule a signed software development contract leaves, an invoice and a calendar feed."""
    runtime, now = client.app.state.runtime, utcnow()
    contract_id = "c-fuzz-1"
    terms = software_development_terms(contract_id=contract_id, org=org)
    payments_service_layer.create_schedule(runtime.uow(), terms, local_date(now), now)
    schedule = _created(client.get(f"/v1/payment-schedules/{contract_id}", headers=_as(org)))
    signing = next(t for t in schedule["tranches"] if t["key"] == "signing")
    invoice = _created(client.post(f"/v1/payment-schedules/{contract_id}/invoices", headers=_as(org),
                                   json={"tranche_id": signing["id"]}))
    feed = _created(client.post("/v1/calendar-feeds", headers=_as(org), json={"name": "finance"}))
    return {"contract_id": [contract_id], "key": ["requirements_confirmed", "final_acceptance"],
            "tranche_id": [t["id"] for t in schedule["tranches"]],
            "invoice_id": [invoice["id"]], "feed_id": [feed["id"]]}


def sla(client, org: str) -> dict[str, list[str]]:
    """A call-centre SLA definition with one ticket timer."""
    today = utcnow().date()
    contract_id = "c-fuzz-sla"
    _created(client.post("/v1/sla/definitions", headers=_as(org), json={
        "contract_id": contract_id, "version": 1, "number": "QY-FUZZ", "title": "Helpdesk", "monthly_fee": "100000.00",
        "effective_date": str(today.replace(day=1)), "end_date": "2030-12-31",
        "sla": {"service_hours": {"hours": {str(d): [["09:00", "18:00"]] for d in range(1, 6)}},
                "credit_cap_share": "0.15",
                "metrics": [{"key": "fr", "kind": "first_response", "label": "first response", "target": "30",
                             "priority": "P1", "time_basis": "business"}]}}))
    return {"contract_id": [contract_id], "period": [f"{today:%Y-%m}"]}


def notifications(client, org: str) -> dict[str, list[str]]:
    """A subscription, a webhook endpoint, and the delivery and inbox item an event left."""
    endpoint = _created(client.post("/v1/webhook-endpoints", headers=_as(org),
                                    json={"url": "http://127.0.0.1:9/qiyue"}))
    mail = _created(client.post("/v1/subscriptions", headers=_as(org), json={
        "event_types": ["payment.*"], "recipient": {"kind": "email", "address": "pm@example.com"}}))
    _created(client.post("/v1/subscriptions", headers=_as(org), json={
        "event_types": ["*"], "recipient": {"kind": "user", "user": "user-1"}}))
    event = PaymentOverdue(contract_id="c-fuzz-1", org=org, tranche_id="t-1", tranche_key="signing",
                           amount=Decimal("370370.37"), currency="CNY", due_date=dt.date(2026, 9, 11),
                           overdue_since=dt.date(2026, 9, 12))
    notifications_service_layer.fan_out(Notifier(), client.app.state.runtime.uow(),
                                        Envelope.new(event, "/qiyue/payments"))
    delivery = client.get("/v1/deliveries", headers=_as(org)).json()["items"][0]
    item = client.get("/v1/inbox", headers=_as(org)).json()["items"][0]
    return {"subscription_id": [mail["id"]], "endpoint_id": [endpoint["id"]], "delivery_id": [delivery["id"]],
            "item_id": [item["id"]]}


SEEDS = {"contracts": contracts, "payments": payments, "sla": sla, "notifications": notifications}


def seed(service: str, client, org: str) -> dict[str, list[str]]:
    """Create `service`'s resources for `org`; the ids they answer to, by path parameter name."""
    return SEEDS[service](client, org)
