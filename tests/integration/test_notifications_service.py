"""The notifications service for real: its own database, the real broker, a real SMTP server.

Events arrive on the other services' topics, published by the test as those services would.
Mail goes to an in-process aiosmtpd server; the service's clock (events, requests and the
scheduler alike) is moved by the test to reach quiet-hour ends and the digest hour.
Webhooks are in test_notifications_webhooks.py; the helpers here serve both files.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import email
import json
from decimal import Decimal as D
from email import policy

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import func, select

from services.notifications import service_layer
from services.notifications.adapters.tables import DeliveryRow, KnownContractRow
from services.notifications.app import create
from services.notifications.settings import NotificationSettings
from shared.broker import free_port
from shared.envelope import Envelope
from shared.events.contracts import ContractSigned
from shared.events.notifications import TOPIC as NOTIFICATIONS_TOPIC
from shared.events.payments import PaymentDue, PaymentOverdue
from shared.kafka import ensure_topics
from shared.pagination import encode_cursor
from tests.helpers import auth, wait_until
from tests.unit.test_payments_domain import software_development_terms

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
ADMIN = auth("admin", sub="admin-zhang")
APP_URL = "https://qiyue.example.cn"
CONTRACT = "c-notify-1"
TITLE = "订单管理系统开发合同"


# ---------------------------------------------------------------------------------------------- helpers

class MailServer:
    """A real SMTP server (aiosmtpd) keeping every message it receives."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content,
                                                      policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class Publisher:
    """Publishes CloudEvents on the other services' topics, as they do, and reads ours."""

    def __init__(self, broker, topic_prefix: str):
        self.prefix, self.bootstrap = topic_prefix, broker.bootstrap
        ensure_topics(broker.bootstrap, ("contracts.events", "payments.events", "sla.events", NOTIFICATIONS_TOPIC), 3,
                      topic_prefix)
        self.producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        self._readers: dict[str, tuple[KafkaConsumer, list]] = {}

    def publish(self, payload, at: dt.datetime | None = None) -> Envelope:
        envelope = Envelope.new(payload, "/qiyue/" + payload.topic.split(".")[0])
        if at is not None:
            envelope = dataclasses.replace(envelope, time=at.astimezone(dt.timezone.utc).isoformat())
        return self.send(envelope)

    def send(self, envelope: Envelope) -> Envelope:
        self.producer.send(self.prefix + envelope.topic, key=envelope.key(), value=envelope.value(),
                           headers=envelope.headers()).get(timeout=15)
        return envelope

    def records(self, topic: str) -> list:
        """Every record of one of this test's topics so far (read from the beginning)."""
        if topic not in self._readers:
            self._readers[topic] = (KafkaConsumer(self.prefix + topic, bootstrap_servers=self.bootstrap,
                                                  group_id=None, auto_offset_reset="earliest"), [])
        consumer, seen = self._readers[topic]
        for batch in consumer.poll(timeout_ms=200).values():
            seen.extend(batch)
        return seen

    def events(self, event_type: str, **where) -> list[dict]:
        out = []
        for record in self.records(NOTIFICATIONS_TOPIC):
            data = json.loads(record.value)
            if dict(record.headers)["ce_type"].decode() == event_type and all(data.get(k) == v for k, v in where.items()):
                out.append(data)
        return out


@pytest.fixture
def smtp():
    server = MailServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def publisher(broker, topic_prefix):
    p = Publisher(broker, topic_prefix)
    yield p
    p.producer.close()
    for consumer, _ in p._readers.values():
        consumer.close()


@pytest.fixture
def notifications(make_settings, smtp):
    """Start a notifications service on this test's database and broker, mailing to `smtp`.

    Retries wait 50-200 ms instead of seconds to hours, so a test sees several in a second.
    """
    clients: list[TestClient] = []

    def start(run: bool = True, **overrides) -> TestClient:
        """`run=False`: the API on a migrated database, without consumer, relay or scheduler."""
        values = {**make_settings("notifications").model_dump(), "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                  "public_base_url": APP_URL, "retry_base_s": 0.05, "retry_cap_s": 0.2, "webhook_timeout_s": 5,
                  **overrides}
        app = create(NotificationSettings(**values), start=run)
        if not run:
            app.state.runtime.migrate()
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


def subscribe(client, headers=ADMIN, **body) -> dict:
    response = client.post("/v1/subscriptions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(client, **query) -> list[dict]:
    response = client.get("/v1/deliveries", params={"limit": 200, **query}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def delivery(client, delivery_id: str) -> dict:
    response = client.get(f"/v1/deliveries/{delivery_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def deliveries_of(client, event_id: str) -> int:
    with client.app.state.runtime.db.read_session() as s:
        return s.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.event_id == event_id))


def set_clock(client, instant: dt.datetime) -> None:
    client.app.state.clock = lambda: instant


def overdue(tranche: str = "signing", amount: str = "370370.37", contract_id: str = CONTRACT) -> PaymentOverdue:
    return PaymentOverdue(contract_id=contract_id, org="acme", tranche_id=f"t-{tranche}", tranche_key=tranche,
                          amount=D(amount), currency="CNY", due_date=dt.date(2026, 9, 11),
                          overdue_since=dt.date(2026, 9, 12))


def due(tranche: str, amount: str = "1234.50", contract_id: str = CONTRACT) -> PaymentDue:
    return PaymentDue(contract_id=contract_id, org="acme", tranche_id=f"t-{tranche}", tranche_key=tranche,
                      label=f"付款 {tranche}", amount=D(amount), currency="CNY", triggered_on=dt.date(2026, 9, 1),
                      due_date=dt.date(2026, 9, 11))


def signed(contract_id: str = CONTRACT) -> ContractSigned:
    terms = software_development_terms(contract_id=contract_id)
    return ContractSigned(contract_id=contract_id, org="acme", version=1, terms=terms)


def sign_contract(client, publisher) -> None:
    """The contract is signed, and its title known here before any payment event names it."""
    publisher.publish(signed())

    def known():
        with client.app.state.runtime.db.read_session() as s:
            return s.get(KnownContractRow, ("acme", CONTRACT)) is not None
    wait_until(known, 20, message="the contract's title")


def parts(message) -> tuple[str, str]:
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


# ---------------------------------------------------------------------------------------------- e-mail

def test_urgent_event_is_mailed_at_once_in_chinese_and_english_and_only_once(notifications, smtp, publisher):
    client = notifications()
    zh = subscribe(client, event_types=["payment.*"], recipient={"kind": "email", "address": "caiwu@jiafang.cn"},
                   language="zh-CN", contract_ids=[CONTRACT], digest=True)       # urgent: at once despite the digest
    subscribe(client, event_types=["payment.overdue"], recipient={"kind": "email", "address": "cfo@client.com"},
              language="en", quiet_hours={"start": "00:00", "end": "23:59"})      # urgent: at once despite quiet hours
    subscribe(client, event_types=["payment.*"], recipient={"kind": "email", "address": "other@jiafang.cn"},
              contract_ids=["c-someone-else"])                                   # another contract: not told
    subscribe(client, event_types=["*"], recipient={"kind": "email", "address": "calm@jiafang.cn"},
              severities=["normal"])                                             # hears of the signing only

    sign_contract(client, publisher)
    calm, = wait_until(lambda: smtp.to("calm@jiafang.cn"), 20, message="the signing")
    assert calm["Subject"] == f"{TITLE}：合同已签署"
    event = publisher.publish(overdue())
    wait_until(lambda: len(smtp.messages) >= 3, 20, message="three mails")

    mail_zh, = smtp.to("caiwu@jiafang.cn")
    assert mail_zh["Subject"] == f"【逾期付款】{TITLE}：¥370,370.37已于2026-09-11到期"
    text, html = parts(mail_zh)
    assert f"合同：{TITLE}（QY-SD-2026-001）" in text and "未付金额：¥370,370.37" in text
    link = f"{APP_URL}/contracts/{CONTRACT}/payments"
    assert link in text and f'href="{link}"' in html and "¥370,370.37" in html and 'lang="zh-CN"' in html

    mail_en, = smtp.to("cfo@client.com")
    assert mail_en["Subject"] == f"[Overdue] {TITLE}: ¥370,370.37 was due on 2026-09-11"
    text, html = parts(mail_en)
    assert "Amount outstanding: ¥370,370.37" in text and link in text and 'lang="en"' in html

    log = wait_until(lambda: {d["status"] for d in deliveries(client, event_id=event.id)} == {"delivered"}
                     and deliveries(client, event_id=event.id), 20, message="settled after sending")
    assert sorted(d["recipient"] for d in log) == ["caiwu@jiafang.cn", "cfo@client.com"]
    assert {d["channel"] for d in log} == {"email"}
    one = delivery(client, next(d["id"] for d in log if d["subscription_id"] == zh["id"]))
    assert [a["outcome"] for a in one["attempt_log"]] == ["delivered"] and one["event"]["id"] == event.id
    wait_until(lambda: len(publisher.events("notification.delivered", source_event_id=event.id)) == 2, 20)

    # The broker hands the same event over again: nothing new is sent. A later event on the same
    # contract (same partition, so read after the duplicate) shows the duplicate was read.
    publisher.send(event)
    later = publisher.publish(overdue("requirements", "100.00"))
    wait_until(lambda: len(smtp.messages) >= 5 and {d["status"] for d in deliveries(client, event_id=later.id)}
               == {"delivered"}, 20, message="the later event's mails")
    assert deliveries_of(client, event.id) == 2 and len(smtp.messages) == 5
    assert len(smtp.to("caiwu@jiafang.cn")) == 2

    # Even past the consumer's inbox, one event and one subscription make one delivery.
    with client.app.state.runtime.uow() as uow:
        assert service_layer.fan_out(client.app.state.notifier, uow, event) == 0
        uow.commit()
    assert deliveries_of(client, event.id) == 2


def test_quiet_hours_hold_mail_and_the_digest_gathers_the_day(notifications, smtp, publisher):
    client = notifications()
    night = dt.datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI)
    set_clock(client, night)
    subscribe(client, event_types=["payment.*"], recipient={"kind": "email", "address": "digest@client.com"},
              language="en", digest=True, digest_at="09:00")
    subscribe(client, event_types=["payment.due"], recipient={"kind": "email", "address": "night@client.com"},
              language="en", quiet_hours={"start": "22:00", "end": "08:00"})
    sign_contract(client, publisher)
    first, second = publisher.publish(due("signing", "370370.37")), publisher.publish(due("requirements"))
    urgent = publisher.publish(overdue())

    # Urgent: at once, whatever the digest says. The rest waits.
    wait_until(lambda: smtp.to("digest@client.com"), 20, message="the urgent mail")
    wait_until(lambda: deliveries_of(client, second.id) == 2, 20)
    assert len(smtp.messages) == 1 and smtp.messages[0]["Subject"].startswith("[Overdue]")
    held = deliveries(client, status="pending")
    quiet_end = dt.datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)
    digest_at = dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
    assert sorted(dt.datetime.fromisoformat(d["next_attempt_at"]) for d in held) == [quiet_end] * 2 + [digest_at] * 2

    set_clock(client, quiet_end + dt.timedelta(seconds=30))
    wait_until(lambda: len(smtp.to("night@client.com")) == 2, 20, message="mail held over the night")
    assert len(smtp.to("digest@client.com")) == 1

    set_clock(client, digest_at + dt.timedelta(seconds=30))
    wait_until(lambda: len(smtp.to("digest@client.com")) == 2, 20, message="the digest")
    digest = smtp.to("digest@client.com")[1]
    assert digest["Subject"] == "Qiyue daily digest: 2 notifications"
    text, html = parts(digest)
    assert text.index("¥370,370.37") < text.index("¥1,234.50")        # oldest first
    assert f"{APP_URL}/contracts/{CONTRACT}/payments" in text and TITLE in html
    wait_until(lambda: {d["status"] for d in deliveries(client, event_id=first.id)} == {"delivered"}, 20)
    assert [d["status"] for d in deliveries(client, event_id=urgent.id)] == ["delivered"]


# ---------------------------------------------------------------------------------------------- inbox

def test_inbox_pages_counts_unread_and_keeps_organisations_apart(notifications, publisher):
    client = notifications()
    user = auth("viewer", sub="user-1")
    finance = auth("finance", sub="fin-2")
    subscribe(client, event_types=["payment.*"], recipient={"kind": "user", "user": "user-1"})
    sub = subscribe(client, event_types=["payment.overdue"], recipient={"kind": "role", "role": "finance"},
                    language="en")
    sign_contract(client, publisher)
    for n in range(5):
        publisher.publish(due(f"t{n}"))
    publisher.publish(overdue())

    def inbox(headers, **query):
        response = client.get("/v1/inbox", params=query, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    wait_until(lambda: inbox(user)["unread_count"] == 6, 20, message="six items for user-1")
    page1 = inbox(user, limit=4)
    page2 = inbox(user, limit=4, cursor=page1["next_cursor"])
    assert len(page1["items"]) == 4 and page1["next_cursor"] and len(page2["items"]) == 2
    assert page2["next_cursor"] is None
    items = page1["items"] + page2["items"]
    assert len({i["id"] for i in items}) == 6
    assert items[0]["event_type"] == "payment.overdue"                       # newest first
    assert items[0]["subject"].startswith(f"【逾期付款】{TITLE}") and not items[0]["read"]

    role_inbox = inbox(finance)
    assert role_inbox["unread_count"] == 1 and role_inbox["items"][0]["subject"].startswith("[Overdue]")

    read = client.post(f"/v1/inbox/{items[0]['id']}/read", headers=user)
    assert read.status_code == 200 and read.json()["read"]
    assert inbox(user)["unread_count"] == 5 and len(inbox(user, unread=True)["items"]) == 5
    assert inbox(finance)["unread_count"] == 1                              # read per person
    assert client.post("/v1/inbox/read-all", headers=user).json()["marked"] == 5
    assert inbox(user)["unread_count"] == 0

    # Another organisation sees nothing of acme's and finds none of its ids.
    globex_user, globex_admin = auth("viewer", org="globex", sub="user-1"), auth("admin", org="globex")
    assert inbox(globex_user) == {"items": [], "unread_count": 0, "next_cursor": None}
    assert client.post(f"/v1/inbox/{items[1]['id']}/read", headers=globex_user).status_code == 404
    assert client.get(f"/v1/subscriptions/{sub['id']}", headers=globex_admin).status_code == 404
    assert client.patch(f"/v1/subscriptions/{sub['id']}", json={"active": False}, headers=globex_admin).status_code == 404
    assert client.delete(f"/v1/subscriptions/{sub['id']}", headers=globex_admin).status_code == 404
    a_delivery = deliveries(client)[0]["id"]
    assert client.get(f"/v1/deliveries/{a_delivery}", headers=globex_admin).status_code == 404
    assert client.post(f"/v1/deliveries/{a_delivery}/redeliver", headers=globex_admin).status_code == 404
    assert client.get("/v1/deliveries", headers=globex_admin).json()["items"] == []
    assert client.get("/v1/subscriptions", headers=globex_admin).json()["items"] == []


def test_subscriptions_are_created_once_per_key_changed_and_removed(notifications):
    client = notifications(run=False)
    body = {"event_types": ["sla.*"], "recipient": {"kind": "role", "role": "pm"}, "severities": ["P1", "P2"]}
    key = {**ADMIN, "Idempotency-Key": "sub-1"}
    first = client.post("/v1/subscriptions", json=body, headers=key)
    again = client.post("/v1/subscriptions", json=body, headers=key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert client.post("/v1/subscriptions", json={**body, "language": "en"}, headers=key).status_code == 422
    assert len(client.get("/v1/subscriptions", headers=ADMIN).json()["items"]) == 1

    sid = first.json()["id"]
    changed = client.patch(f"/v1/subscriptions/{sid}", headers=ADMIN,
                           json={"language": "en", "quiet_hours": {"start": "22:00", "end": "07:30"}, "severities": None})
    assert changed.status_code == 200, changed.text
    view = changed.json()
    assert view["language"] == "en" and view["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    assert view["severities"] is None and view["recipient"] == {"kind": "role", "role": "pm"}
    assert client.patch(f"/v1/subscriptions/{sid}", headers=ADMIN, json={"recipient": {}}).status_code == 422
    assert client.delete(f"/v1/subscriptions/{sid}", headers=ADMIN).status_code == 204
    assert client.get(f"/v1/subscriptions/{sid}", headers=ADMIN).status_code == 404


def test_bad_subscriptions_are_refused_field_by_field(notifications):
    client = notifications(run=False)
    response = client.post("/v1/subscriptions", headers=ADMIN, json={
        "event_types": ["sla.*", "bad type!"], "recipient": {"kind": "email", "address": "not-an-address"},
        "language": "fr", "quiet_hours": {"start": "25:00", "end": "08:00"}, "timezone": "Mars/Olympus"})
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert {"/event_types", "/recipient/email/address", "/language", "/quiet_hours/start", "/timezone"} <= pointers
    response = client.post("/v1/subscriptions", headers=ADMIN, json={
        "event_types": ["sla.*"], "recipient": {"kind": "webhook", "endpoint_id": "nope"}})
    assert response.status_code == 422 and response.json()["errors"][0]["pointer"] == "/recipient/endpoint_id"
    assert client.get("/v1/subscriptions", headers=ADMIN).json()["items"] == []
    for path, cursor in [("/v1/inbox", encode_cursor("an id")), ("/v1/deliveries", encode_cursor(["2026-11-23", "x"])),
                         ("/v1/subscriptions", encode_cursor({"id": 1})), ("/v1/webhook-endpoints", "!!")]:
        response = client.get(path, params={"cursor": cursor}, headers=ADMIN)
        assert response.status_code == 422 and response.json()["errors"][0]["parameter"] == "cursor", path
    assert client.post("/v1/subscriptions", headers=auth("finance"), json={
        "event_types": ["sla.*"], "recipient": {"kind": "role", "role": "finance"}}).status_code == 403
