"""Webhooks for real: a real HTTP receiver (uvicorn) checks every call with the Standard Webhooks
reference verifier; retries, dead letters, endpoint disabling, redelivery and the SSRF rules.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from dataclasses import dataclass

import pytest
from fastapi import FastAPI, Request, Response
from kafka import KafkaConsumer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notifications.adapters.webhooks import resolve
from services.notifications.domain import signing
from shared.cli import main as qiyue
from shared.events.notifications import DLQ_TOPIC
from shared.events.sla import SlaBreached
from tests.helpers import auth, served, wait_until
from tests.integration.test_notifications_service import (ADMIN, CONTRACT, delivery, deliveries, notifications,  # noqa: F401
                                                          publisher, smtp, subscribe)

WINDOW_S = 300   # the reference verifier's tolerance


@dataclass
class Call:
    endpoint: str
    headers: dict
    body: bytes
    verified: bool
    status: int


class Receiver:
    """A customer's webhook receiver: verifies each call, and fails the first `fail_first` per endpoint
    (the very first one after `slow_first` seconds, longer than the sender waits)."""

    def __init__(self):
        self.secrets: dict[str, str] = {}
        self.fail_first: dict[str, int] = {}
        self.slow_first: dict[str, float] = {}
        self.calls: list[Call] = []
        self.app = FastAPI()
        self.app.post("/hooks/{name}")(self.receive)

    async def receive(self, name: str, request: Request) -> Response:
        body, headers = await request.body(), dict(request.headers)
        try:
            Webhook(self.secrets[name]).verify(body, headers)
            verified = abs(time.time() - int(headers["webhook-timestamp"])) <= WINDOW_S
        except (WebhookVerificationError, KeyError):
            verified = False
        earlier = len(self.of(name))
        status = 401 if not verified else 503 if earlier < self.fail_first.get(name, 0) else 204
        self.calls.append(Call(name, headers, body, verified, status))
        if earlier == 0 and name in self.slow_first:
            await asyncio.sleep(self.slow_first[name])      # a server too slow to answer in time
        return Response(status_code=status)

    def of(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == name]


@pytest.fixture
def receiver():
    r = Receiver()
    with served(r.app) as base:
        r.base = base
        yield r


def endpoint(client, receiver: Receiver, name: str, fail_first: int = 0) -> dict:
    response = client.post("/v1/webhook-endpoints", json={"url": f"{receiver.base}/hooks/{name}"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created = response.json()
    receiver.secrets[name], receiver.fail_first[name] = created["secret"], fail_first
    return created


def breach(period: str = "2026-10", contract_id: str = CONTRACT) -> SlaBreached:
    at = dt.datetime(2026, 10, 31, 16, 0, tzinfo=dt.timezone.utc)
    return SlaBreached(contract_id=contract_id, org="acme", metric_key="availability", metric_kind="availability",
                       period=period, target="99.90", actual="99.12", breached_at=at, detected_at=at)


def test_signed_webhook_timed_out_and_retried_with_backoff_is_accepted_exactly_once(notifications, publisher, receiver):
    client = notifications(allow_private_webhooks=True, webhook_timeout_s=0.5)
    hook = endpoint(client, receiver, "flaky", fail_first=3)
    receiver.slow_first["flaky"] = 2.0
    assert hook["secret"].startswith("whsec_")
    shown = client.get(f"/v1/webhook-endpoints/{hook['id']}", headers=ADMIN).json()
    assert "secret" not in shown and shown["status"] == "active"
    subscribe(client, event_types=["sla.*"], recipient={"kind": "webhook", "endpoint_id": hook["id"]})

    event = publisher.publish(breach())
    sent, = wait_until(lambda: [d for d in deliveries(client, event_id=event.id) if d["status"] == "delivered"], 20,
                       message="delivered after three failures")
    calls = receiver.of("flaky")
    assert [c.status for c in calls] == [503, 503, 503, 204] and all(c.verified for c in calls)
    assert len({c.headers["webhook-id"] for c in calls}) == 1           # one message, retried under one id
    body = json.loads(calls[-1].body)
    assert body == {**event.structured(), "data": body["data"]} and body["data"]["actual"] == "99.12"
    assert calls[-1].headers["content-type"].startswith("application/cloudevents+json")

    log = delivery(client, sent["id"])["attempt_log"]
    assert [(a["outcome"], a["status_code"]) for a in log] == [("failed", None)] + [("failed", 503)] * 2 + [
        ("delivered", 204)]
    assert "Timeout" in log[0]["error"] and log[0]["duration_ms"] < 1500
    gaps = [(dt.datetime.fromisoformat(b["at"]) - dt.datetime.fromisoformat(a["at"])).total_seconds()
            for a, b in zip(log, log[1:])]
    assert all(g >= 0.025 for g in gaps)                                # waited before each retry
    wait_until(lambda: publisher.events("notification.delivered", delivery_id=sent["id"], attempts=4), 20)

    # The reference verifier refuses a replay outside the timestamp window and a changed body.
    stale = int(time.time()) - WINDOW_S - 60
    old = signing.headers(hook["secret"], "msg_replayed", stale, calls[-1].body)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(hook["secret"]).verify(calls[-1].body, old)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(calls[-1].body + b" ", calls[-1].headers)


def test_failed_deliveries_are_dead_lettered_the_endpoint_disabled_and_redelivered(
        notifications, publisher, receiver, monkeypatch, broker, topic_prefix):
    client = notifications(allow_private_webhooks=True, retry_horizon_s=0.3, disable_endpoint_after_failed_deliveries=2)
    hook = endpoint(client, receiver, "down", fail_first=10**6)
    subscribe(client, event_types=["sla.breached"], recipient={"kind": "webhook", "endpoint_id": hook["id"]})
    first, second = publisher.publish(breach("2026-09")), publisher.publish(breach("2026-10"))

    failed = wait_until(lambda: len(deliveries(client, status="failed")) == 2 and deliveries(client, status="failed"),
                        20, message="both deliveries failed for good")
    assert {d["event_id"] for d in failed} == {first.id, second.id}
    assert all(d["attempts"] >= 2 and d["last_error"].startswith("HTTP 503") for d in failed)

    # Each failure is on the dead-letter topic, with the original CloudEvent, and announced.
    dlq = KafkaConsumer(topic_prefix + DLQ_TOPIC, bootstrap_servers=broker.bootstrap, group_id=None,
                        auto_offset_reset="earliest")
    records = []
    wait_until(lambda: records.extend(r for b in dlq.poll(timeout_ms=200).values() for r in b) or len(records) >= 2, 20)
    dlq.close()
    headers = [dict(r.headers) for r in records]
    assert {h["dlq_delivery_id"].decode() for h in headers} == {d["id"] for d in failed}
    assert {h["ce_id"].decode() for h in headers} == {first.id, second.id}
    assert json.loads(records[0].value)["metric_key"] == "availability"
    wait_until(lambda: len(publisher.events("notification.failed")) == 2, 20)

    # Two deliveries in a row failed: the endpoint is off, and the organisation's admins are told.
    assert client.get(f"/v1/webhook-endpoints/{hook['id']}", headers=ADMIN).json()["status"] == "disabled"
    disabled, = wait_until(lambda: publisher.events("webhook_endpoint.disabled", endpoint_id=hook["id"]), 20)
    assert "2 deliveries in a row failed" in disabled["reason"]
    inbox = client.get("/v1/inbox", headers=auth("admin", sub="admin-li")).json()
    assert inbox["unread_count"] == 1 and inbox["items"][0]["event_type"] == "webhook_endpoint.disabled"
    assert client.get("/v1/inbox", headers=auth("viewer")).json()["unread_count"] == 0
    calls_while_down = len(receiver.of("down"))

    # The receiver is fixed; redelivering waits for the endpoint to be enabled again.
    receiver.fail_first["down"] = 0
    one, other = failed
    assert client.post(f"/v1/deliveries/{one['id']}/redeliver", headers=ADMIN).status_code == 409
    assert client.post(f"/v1/webhook-endpoints/{hook['id']}/enable", headers=ADMIN).json()["status"] == "active"
    assert client.post(f"/v1/deliveries/{one['id']}/redeliver", headers=ADMIN).status_code == 202
    wait_until(lambda: delivery(client, one["id"])["status"] == "delivered", 20)
    log = delivery(client, one["id"])["attempt_log"]
    assert [a["outcome"] for a in log][-1] == "delivered" and {a["outcome"] for a in log[:-1]} == {"failed"}

    # The same from the command line (the running service's scheduler sends it).
    monkeypatch.setenv("QIYUE_NOTIFICATIONS_DATABASE_URL", client.app.state.settings.database_url)
    assert qiyue(["notifications", "redeliver", other["id"], "--org", "acme"]) == 0
    assert qiyue(["notifications", "redeliver", other["id"], "--org", "globex"]) == 1
    wait_until(lambda: delivery(client, other["id"])["status"] == "delivered", 20)
    assert [c.status for c in receiver.of("down")[calls_while_down:]] == [204, 204]


@pytest.mark.parametrize("url, why", [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.7/hook", "private"),
    ("http://localhost:8080/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:192.168.1.1]/hook", "private"),
    ("ftp://hooks.partner.cn/x", "scheme"),
    ("https://user:pw@hooks.partner.cn/x", "credentials"),
])
def test_webhook_urls_into_our_own_network_are_refused(notifications, url, why, backend):
    if backend != "sqlite":
        pytest.skip("the rule does not depend on the database")
    client = notifications(run=False)
    # hooks.partner.cn stands for a public name (no DNS here); every other name resolves for real.
    client.app.state.notifier.webhooks.resolver = (
        lambda host, port: ["93.184.216.34"] if host == "hooks.partner.cn" else resolve(host, port))
    response = client.post("/v1/webhook-endpoints", json={"url": url}, headers=ADMIN)
    assert response.status_code == 422, response.text
    error, = response.json()["errors"]
    assert error["pointer"] == "/url" and why in error["detail"]
    assert client.get("/v1/webhook-endpoints", headers=ADMIN).json()["items"] == []


def test_a_name_that_later_resolves_inside_is_refused_at_send_time(notifications, publisher):
    client = notifications()
    webhooks = client.app.state.notifier.webhooks
    webhooks.resolver = lambda host, port: ["93.184.216.34"]                     # public when registered
    hook = client.post("/v1/webhook-endpoints", json={"url": "https://hooks.partner.cn/qiyue"}, headers=ADMIN).json()
    subscribe(client, event_types=["sla.*"], recipient={"kind": "webhook", "endpoint_id": hook["id"]})
    webhooks.resolver = lambda host, port: ["93.184.216.34", "10.0.0.7"]         # DNS rebinding: one inside

    event = publisher.publish(breach())
    gone, = wait_until(lambda: [d for d in deliveries(client, event_id=event.id) if d["status"] == "failed"], 20)
    log = delivery(client, gone["id"])["attempt_log"]
    assert [a["outcome"] for a in log] == ["refused"] and "10.0.0.7" in log[0]["error"]
    assert "private" in gone["last_error"]
    wait_until(lambda: publisher.events("notification.failed", delivery_id=gone["id"]), 20)

    # Removing the endpoint ends its subscriptions; the log keeps what happened.
    assert client.delete(f"/v1/webhook-endpoints/{hook['id']}", headers=ADMIN).status_code == 204
    assert client.get(f"/v1/webhook-endpoints/{hook['id']}", headers=ADMIN).status_code == 404
    assert [s["active"] for s in client.get("/v1/subscriptions", headers=ADMIN).json()["items"]] == [False]
    assert delivery(client, gone["id"])["status"] == "failed"
