"""The notifications use cases against a fake unit of work with in-memory repositories (no
database, broker, SMTP or HTTP): what each one changes, commits and records as events."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from services.notifications import service_layer
from services.notifications.adapters.notifier import Notifier
from services.notifications.adapters.repository import subscription_of
from services.notifications.domain.attempts import Outcome
from services.notifications.domain.endpoints import Refused, WebhookEndpoint
from services.notifications.service_layer import sending
from services.notifications.settings import NotificationSettings
from shared.envelope import Envelope
from shared.errors import Conflict, Invalid, NotFound
from shared.events.payments import PaymentDue, PaymentOverdue
from shared.ids import new_id

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)          # 10:00 in Shanghai
CONTRACT = "c-software-1"


# --- fakes -------------------------------------------------------------------------------------

class FakeSubscriptions:
    def __init__(self):
        self.rows: dict[str, SimpleNamespace] = {}

    def active(self, org):
        return [subscription_of(r) for r in self.rows.values() if r.org == org and r.active]

    def get(self, org, subscription_id):
        row = self.rows.get(subscription_id)
        return row if row is not None and row.org == org else None

    def add(self, **values):
        row = SimpleNamespace(id=new_id(), **values)
        self.rows[row.id] = row
        return row

    def save(self, row):
        pass

    def delete(self, row):
        del self.rows[row.id]

    def stop_for_endpoint(self, org, endpoint_id):
        for row in self.rows.values():
            if row.org == org and row.recipient_kind == "webhook" and row.recipient == endpoint_id:
                row.active = False


class FakeEndpoints:
    def __init__(self):
        self.stored: dict[str, WebhookEndpoint] = {}

    def get(self, org, endpoint_id):
        e = self.stored.get(endpoint_id)
        return dataclasses.replace(e, events=[]) if e is not None and e.org == org else None

    def add(self, endpoint):
        self.stored[endpoint.id] = dataclasses.replace(endpoint, events=[])

    save = add

    def delete(self, org, endpoint_id):
        del self.stored[endpoint_id]

    def active_ids(self, org):
        return {e.id for e in self.stored.values() if e.org == org and e.active}


class FakeDeliveries:
    def __init__(self):
        self.stored: dict = {}
        self.attempts: dict[str, list] = {}

    def _copy(self, d):
        return dataclasses.replace(d, events=[], new_attempts=[]) if d is not None else None

    def get(self, org, delivery_id):
        d = self.stored.get(delivery_id)
        return self._copy(d) if d is not None and d.org == org else None

    def get_by_id(self, delivery_id):
        return self._copy(self.stored.get(delivery_id))

    def add(self, delivery):
        self.attempts.setdefault(delivery.id, []).extend(delivery.new_attempts)
        delivery.new_attempts.clear()
        self.stored[delivery.id] = self._copy(delivery)

    save = add

    def subscriptions_already_delivering(self, event_id):
        return {d.subscription_id for d in self.stored.values() if d.event_id == event_id}

    def due(self, now, limit):
        due = [d for d in self.stored.values() if d.status in ("pending", "sending") and d.next_attempt_at <= now]
        return [self._copy(d) for d in sorted(due, key=lambda d: d.next_attempt_at)[:limit]]

    def claim(self, delivery, until):
        stored = self.stored[delivery.id]
        if (stored.status, stored.attempts) != (delivery.status, delivery.attempts):
            return False
        stored.status = delivery.status = "sending"
        stored.next_attempt_at = delivery.next_attempt_at = until
        return True

    def next_due(self):
        return min((d.next_attempt_at for d in self.stored.values() if d.status in ("pending", "sending")),
                   default=None)


class FakeInbox:
    def __init__(self):
        self.items: list[SimpleNamespace] = []
        self.reads: dict[tuple[str, str], dt.datetime] = {}

    def add(self, org, recipient, event_id, event_type, contract_id, subject, body, link, now, delivery_id):
        self.items.append(SimpleNamespace(id=new_id(), org=org, recipient_kind=recipient.kind,
                                          recipient=recipient.target, event_id=event_id, event_type=event_type,
                                          contract_id=contract_id or None, subject=subject, body=body, link=link,
                                          created_at=now, delivery_id=delivery_id))

    def _visible(self, org, user, roles):
        return [i for i in self.items if i.org == org and ((i.recipient_kind == "user" and i.recipient == user)
                                                         or (i.recipient_kind == "role" and i.recipient in roles))]

    def item(self, org, user, roles, item_id):
        for i in self._visible(org, user, roles):
            if i.id == item_id:
                return i, self.reads.get((i.id, user))
        return None

    def mark_read(self, item_id, user, now):
        self.reads[(item_id, user)] = now

    def mark_all_read(self, org, user, roles, now):
        unread = [i for i in self._visible(org, user, roles) if (i.id, user) not in self.reads]
        for i in unread:
            self.mark_read(i.id, user, now)
        return len(unread)


class FakeContracts:
    def __init__(self):
        self.known = {}

    def remember(self, org, facts, now):
        self.known[(org, facts.contract_id)] = facts

    def get(self, org, contract_id):
        return self.known.get((org, contract_id))


class FakeUnitOfWork:
    """Duck-types NotificationsUnitOfWork: the same repositories, `commit()` records that it
    committed and moves the collected aggregates' events to `events`."""

    def __init__(self, now=NOW):
        self.session = None
        self.idempotency_keys = None
        self.clock = lambda: now
        self.subscriptions, self.endpoints, self.deliveries = FakeSubscriptions(), FakeEndpoints(), FakeDeliveries()
        self.inbox, self.contracts = FakeInbox(), FakeContracts()
        self.dead_letters = SimpleNamespace(added=[], add=lambda d, now: self.dead_letters.added.append(d.id))
        self.commits = 0
        self.events: list = []
        self._tracked: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._tracked.clear()

    def collect(self, *aggregates):
        self._tracked.extend(aggregates)

    def emit(self, payload):
        self.events.append(payload)

    def commit(self):
        for aggregate in self._tracked:
            self.events.extend(aggregate.events)
            aggregate.events.clear()
        self._tracked.clear()
        self.commits += 1

    def of_type(self, event_type):
        return [e for e in self.events if e.event_type == event_type]


class FakeMail:
    def __init__(self):
        self.sent = []

    def send(self, message, deadline=None):
        self.sent.append(message)


class FakeWebhooks:
    def __init__(self, outcome=Outcome(True, 200)):
        self.outcome, self.calls = outcome, []

    def check(self, url):
        if "10.0.0." in url:
            raise Refused("10.0.0.7 is a private address")

    def send(self, url, secret, message_id, body, deadline=None):
        self.calls.append((url, message_id))
        return self.outcome


@pytest.fixture
def uow():
    return FakeUnitOfWork()


@pytest.fixture
def notifier():
    n = Notifier(NotificationSettings(environment="test", disable_endpoint_after_failed_deliveries=2))
    n.mail, n.webhooks, n.random = FakeMail(), FakeWebhooks(), lambda: 0.0
    n.woken = []
    n.wake_after_commit = lambda unit: n.woken.append(unit)
    n.wake = lambda: n.woken.append("wake")
    return n


def subscribe(uow, *, kind="email", target="cfo@client.com", event_types=("payment.*",), digest=False, **extra):
    return uow.subscriptions.add(
        org="acme", event_types=list(event_types), contract_ids=None, severities=None, recipient_kind=kind,
        recipient=target, language=extra.get("language", "en"), digest=digest, digest_at="09:00",
        quiet_start=None, quiet_end=None, timezone="Asia/Shanghai", active=True, created_by="admin-1",
        created_at=extra.get("created_at", NOW), updated_at=NOW)


def endpoint(uow, status="active", url="https://hooks.partner.cn/q"):
    e = WebhookEndpoint(id=new_id(), org="acme", url=url, secret="whsec_x",
                        created_by="admin-1", created_at=NOW, status=status)
    uow.endpoints.add(e)
    return e


def overdue(org="acme") -> Envelope:
    return Envelope.new(PaymentOverdue(contract_id=CONTRACT, org=org, tranche_id="t-1", tranche_key="signing",
                                       amount=D("370370.37"), currency="CNY", due_date=dt.date(2026, 9, 11),
                                       overdue_since=dt.date(2026, 9, 12)), "/qiyue/payments", time=NOW)


def due(key="signing") -> Envelope:
    return Envelope.new(PaymentDue(contract_id=CONTRACT, org="acme", tranche_id=f"t-{key}", tranche_key=key,
                                   label=key, amount=D("1234.50"), currency="CNY", triggered_on=dt.date(2026, 9, 1),
                                   due_date=dt.date(2026, 9, 11)), "/qiyue/payments", time=NOW)


# --- fan-out -----------------------------------------------------------------------------------

def test_an_event_fans_out_to_each_recipient_and_the_inbox_is_delivered_at_once(uow, notifier):
    mail = subscribe(uow)
    inbox = subscribe(uow, kind="role", target="finance")
    event = overdue()

    assert service_layer.fan_out(notifier, uow, event) == 2

    assert uow.commits == 1 and notifier.woken == [uow]
    by_sub = {d.subscription_id: d for d in uow.deliveries.stored.values()}
    assert by_sub[mail.id].status == "pending" and by_sub[mail.id].next_attempt_at == NOW
    assert by_sub[inbox.id].status == "delivered" and by_sub[inbox.id].attempts == 1
    assert [a.outcome for a in uow.deliveries.attempts[by_sub[inbox.id].id]] == ["delivered"]
    item, = uow.inbox.items
    assert (item.recipient_kind, item.recipient, item.event_id) == ("role", "finance", event.id)
    delivered, = uow.of_type("notification.delivered")
    assert delivered.delivery_id == by_sub[inbox.id].id and delivered.source_event_id == event.id


def test_the_same_event_twice_makes_no_second_delivery(uow, notifier):
    subscribe(uow)
    event = overdue()
    assert service_layer.fan_out(notifier, uow, event) == 1
    assert service_layer.fan_out(notifier, uow, event) == 0
    assert len(uow.deliveries.stored) == 1


def test_an_event_naming_no_org_notifies_nobody(uow, notifier):
    subscribe(uow)
    bad = dataclasses.replace(overdue(), data={**overdue().data, "org": ""})
    assert service_layer.fan_out(notifier, uow, bad) == 0
    assert uow.deliveries.stored == {} and uow.commits == 0 and notifier.woken == []


def test_one_recipient_hears_once_and_a_disabled_endpoint_not_at_all(uow, notifier):
    subscribe(uow, event_types=("payment.*",), created_at=NOW - dt.timedelta(days=1))
    subscribe(uow, event_types=("*",))                                            # same recipient, newer
    off = endpoint(uow, status="disabled")
    subscribe(uow, kind="webhook", target=off.id)
    assert service_layer.fan_out(notifier, uow, overdue()) == 1
    delivery, = uow.deliveries.stored.values()
    assert delivery.channel == "email"


# --- sending -----------------------------------------------------------------------------------

def test_the_send_pass_mails_what_is_due_and_records_it_delivered(uow, notifier):
    subscribe(uow)
    service_layer.fan_out(notifier, uow, overdue())
    uow.events.clear()

    sent, next_due = service_layer.send_due(notifier, lambda: uow, NOW)

    assert sent == 1 and next_due is None
    message, = notifier.mail.sent
    assert message["To"] == "cfo@client.com" and "370,370.37" in message["Subject"]
    delivery, = uow.deliveries.stored.values()
    assert delivery.status == "delivered" and delivery.delivered_at == NOW and delivery.attempts == 1
    assert [e.event_type for e in uow.events] == ["notification.delivered"]


def test_a_digest_sends_one_mail_for_a_recipients_day(uow, notifier):
    subscribe(uow, digest=True)
    for key in ("signing", "requirements"):
        service_layer.fan_out(notifier, uow, due(key))
    digest_at = next(iter(uow.deliveries.stored.values())).next_attempt_at
    assert digest_at == dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 Shanghai tomorrow

    assert service_layer.send_due(notifier, lambda: uow, NOW)[0] == 0             # not yet
    assert service_layer.send_due(notifier, lambda: uow, digest_at)[0] == 2
    assert len(notifier.mail.sent) == 1
    assert {d.status for d in uow.deliveries.stored.values()} == {"delivered"}


def test_a_failed_attempt_is_retried_later_and_a_refusal_fails_for_good_and_is_dead_lettered(uow, notifier):
    hook = endpoint(uow)
    subscribe(uow, kind="webhook", target=hook.id)
    service_layer.fan_out(notifier, uow, overdue())
    notifier.webhooks.outcome = Outcome(False, 503, "HTTP 503")
    service_layer.send_due(notifier, lambda: uow, NOW)
    delivery, = uow.deliveries.stored.values()
    assert delivery.status == "pending" and delivery.next_attempt_at == NOW + dt.timedelta(seconds=2.5)
    assert uow.endpoints.stored[hook.id].failing_since == NOW

    notifier.webhooks.outcome = Outcome(False, error="refused: 10.0.0.7 is a private address", refused=True)
    later = NOW + dt.timedelta(seconds=5)
    service_layer.send_due(notifier, lambda: uow, later)
    delivery, = uow.deliveries.stored.values()
    assert delivery.status == "failed" and delivery.failed_at == later and delivery.attempts == 2
    assert [a.outcome for a in uow.deliveries.attempts[delivery.id]] == ["failed", "refused"]
    assert uow.dead_letters.added == [delivery.id]
    failed, = uow.of_type("notification.failed")
    assert failed.delivery_id == delivery.id and "private" in failed.error


def test_an_endpoint_failing_delivery_after_delivery_is_disabled_and_its_admins_told(uow, notifier):
    hook = endpoint(uow)
    subscribe(uow, kind="webhook", target=hook.id)
    notifier.webhooks.outcome = Outcome(False, error="refused", refused=True)
    for key in ("signing", "requirements"):            # the policy here: 2 failed deliveries in a row
        service_layer.fan_out(notifier, uow, due(key))
    service_layer.send_due(notifier, lambda: uow, NOW)

    stored = uow.endpoints.stored[hook.id]
    assert stored.status == "disabled" and "2 deliveries in a row failed" in stored.disabled_reason
    disabled, = uow.of_type("webhook_endpoint.disabled")
    assert disabled.endpoint_id == hook.id
    item, = uow.inbox.items
    assert (item.recipient_kind, item.recipient, item.event_type) == ("role", "admin", "webhook_endpoint.disabled")


def test_deliveries_to_a_disabled_endpoint_fail_as_refused_without_a_call(uow, notifier):
    hook = endpoint(uow)
    subscribe(uow, kind="webhook", target=hook.id)
    service_layer.fan_out(notifier, uow, overdue())
    uow.endpoints.stored[hook.id].status = "disabled"
    service_layer.send_due(notifier, lambda: uow, NOW)
    delivery, = uow.deliveries.stored.values()
    assert delivery.status == "failed" and notifier.webhooks.calls == []
    assert uow.endpoints.stored[hook.id].failed_deliveries == 0        # not counted against it


class RaisingFor(FakeWebhooks):
    """A sender with a bug for one URL: it raises what httpx raised for an IDN host name."""

    def __init__(self, url):
        super().__init__()
        self.bad = url

    def send(self, url, secret, message_id, body, deadline=None):
        if url == self.bad:
            raise UnicodeEncodeError("ascii", "bücher.example", 1, 2, "ordinal not in range(128)")
        return super().send(url, secret, message_id, body, deadline)


def test_a_send_that_raises_fails_that_attempt_only_and_the_pass_goes_on(uow, notifier):
    bad, good = endpoint(uow, url="https://bücher.example/q"), endpoint(uow)
    for hook in (bad, good):
        subscribe(uow, kind="webhook", target=hook.id)
    subscribe(uow)
    service_layer.fan_out(notifier, uow, overdue())
    notifier.webhooks = RaisingFor(bad.url)

    sent, _ = service_layer.send_due(notifier, lambda: uow, NOW)

    assert sent == 3 and len(notifier.mail.sent) == 1 and len(notifier.webhooks.calls) == 1
    by_recipient = {d.recipient: d for d in uow.deliveries.stored.values()}
    assert by_recipient[good.id].status == by_recipient["cfo@client.com"].status == "delivered"
    retried = by_recipient[bad.id]
    assert retried.status == "pending" and retried.attempts == 1 and "UnicodeEncodeError" in retried.last_error


def test_a_delivery_that_cannot_be_recorded_keeps_its_claim_and_the_others_are_recorded(uow, notifier):
    first, second = endpoint(uow), endpoint(uow)
    for hook in (first, second):
        subscribe(uow, kind="webhook", target=hook.id)
    service_layer.fan_out(notifier, uow, overdue())
    stuck = next(d for d in uow.deliveries.stored.values() if d.recipient == first.id)
    save = uow.deliveries.save

    def failing_save(delivery):
        if delivery.id == stuck.id:
            raise RuntimeError("the row is locked")
        save(delivery)
    uow.deliveries.save = failing_save

    service_layer.send_due(notifier, lambda: uow, NOW)

    statuses = {d.recipient: d.status for d in uow.deliveries.stored.values()}
    assert statuses == {first.id: "sending", second.id: "delivered"}


def test_the_send_pass_starts_nothing_late_ends_every_call_in_the_lease_and_gives_back_the_rest(
        uow, notifier, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(sending, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    deadlines = []

    class Slow(FakeWebhooks):
        def send(self, url, secret, message_id, body, deadline=None):
            deadlines.append(deadline)
            clock[0] += 0.3                      # each call takes 0.3 s of a 1 s lease
            return super().send(url, secret, message_id, body, deadline)
    notifier.webhooks, notifier.lease_ttl_s = Slow(), 1.0
    notifier.settings.send_concurrency = 1
    hook = endpoint(uow)
    subscribe(uow, kind="webhook", target=hook.id, event_types=("payment.due",))
    for key in ("a", "b", "c", "d"):
        service_layer.fan_out(notifier, uow, due(key))

    claimed, next_due = service_layer.send_due(notifier, lambda: uow, NOW)

    # Sends end by 0.8 s (a fifth of the lease is kept for settling); none starts after 0.4 s (half of that).
    assert claimed == 4 and deadlines == [100.8, 100.8]
    stored = sorted(uow.deliveries.stored.values(), key=lambda d: d.status)
    assert [(d.status, d.attempts) for d in stored] == [("delivered", 1)] * 2 + [("pending", 0)] * 2
    assert all(d.next_attempt_at == NOW for d in stored[2:]) and next_due == NOW
    assert all(uow.deliveries.attempts[d.id] == [] for d in stored[2:])


# --- redelivery --------------------------------------------------------------------------------

def test_redeliver_sends_a_failed_delivery_again_with_a_fresh_horizon(uow, notifier):
    subscribe(uow)
    service_layer.fan_out(notifier, uow, overdue())
    delivery = next(iter(uow.deliveries.stored.values()))
    delivery.status, delivery.failed_at, delivery.last_error, delivery.round_attempts = "failed", NOW, "boom", 27
    later = NOW + dt.timedelta(days=2)

    again = service_layer.redeliver(uow, "acme", delivery.id, later, wake=notifier.wake)

    stored = uow.deliveries.stored[delivery.id]
    assert (stored.status, stored.next_attempt_at, stored.retry_since, stored.round_attempts) == ("pending", later,
                                                                                                   later, 0)
    assert stored.failed_at is None and stored.last_error is None and again.status == "pending"
    assert notifier.woken[-1] == "wake"


def test_redeliver_refuses_inbox_items_work_in_progress_and_other_orgs(uow, notifier):
    subscribe(uow, kind="user", target="pm-1")
    subscribe(uow)
    service_layer.fan_out(notifier, uow, overdue())
    by_channel = {d.channel: d for d in uow.deliveries.stored.values()}
    commits = uow.commits
    with pytest.raises(Conflict, match="inbox"):
        service_layer.redeliver(uow, "acme", by_channel["inbox"].id, NOW)
    with pytest.raises(Conflict, match="already on its way"):
        service_layer.redeliver(uow, "acme", by_channel["email"].id, NOW)
    with pytest.raises(NotFound):
        service_layer.redeliver(uow, "other-org", by_channel["email"].id, NOW)
    assert uow.commits == commits


# --- subscriptions, endpoints, inbox -----------------------------------------------------------

def test_a_subscription_to_an_unknown_endpoint_is_invalid_and_a_good_one_is_created(uow):
    body = {"event_types": ["sla.*"], "recipient": {"kind": "webhook", "endpoint_id": "nope"}, "language": "en",
            "digest": False, "digest_at": "09:00", "timezone": "Asia/Shanghai", "active": True}
    with pytest.raises(Invalid):
        service_layer.create_subscription(uow, "acme", "admin-1", body, NOW, present=lambda r: {"id": r.id})
    assert uow.subscriptions.rows == {}

    body["recipient"] = {"kind": "email", "address": "ops@client.com"}
    status, answer = service_layer.create_subscription(uow, "acme", "admin-1", body, NOW,
                                                       present=lambda r: {"id": r.id, "to": r.recipient})
    assert status == 201 and answer["to"] == "ops@client.com" and uow.commits == 1
    assert uow.subscriptions.rows[answer["id"]].created_at == NOW


def test_an_endpoint_is_registered_with_its_secret_and_a_private_url_is_refused(uow, notifier):
    with pytest.raises(Invalid, match="not allowed"):
        service_layer.create_endpoint(notifier, uow, "acme", "admin-1", {"url": "http://10.0.0.7/x"}, NOW,
                                      present=lambda e, secret: {})
    status, answer = service_layer.create_endpoint(
        notifier, uow, "acme", "admin-1", {"url": "https://hooks.partner.cn/q", "description": "ERP"}, NOW,
        present=lambda e, secret: {"id": e.id, "secret": secret})
    assert status == 201 and answer["secret"].startswith("whsec_")
    assert uow.endpoints.stored[answer["id"]].secret == answer["secret"]


def test_enabling_resets_an_endpoint_and_deleting_one_stops_its_subscriptions(uow):
    hook = endpoint(uow, status="disabled")
    uow.endpoints.stored[hook.id].failed_deliveries = 5
    sub = subscribe(uow, kind="webhook", target=hook.id)

    enabled = service_layer.enable_endpoint(uow, "acme", hook.id)
    assert enabled.status == "active" and uow.endpoints.stored[hook.id].failed_deliveries == 0

    service_layer.delete_endpoint(uow, "acme", hook.id)
    assert hook.id not in uow.endpoints.stored and uow.subscriptions.rows[sub.id].active is False
    with pytest.raises(NotFound):
        service_layer.enable_endpoint(uow, "acme", hook.id)


def test_reading_the_inbox_keeps_the_first_read_time(uow, notifier):
    subscribe(uow, kind="role", target="pm")
    subscribe(uow, kind="user", target="pm-1")
    service_layer.fan_out(notifier, uow, overdue())
    service_layer.fan_out(notifier, uow, due())
    first = uow.inbox.items[0]

    _, read_at = service_layer.mark_read(uow, "acme", "pm-1", ["pm"], first.id, NOW)
    _, again = service_layer.mark_read(uow, "acme", "pm-1", ["pm"], first.id, NOW + dt.timedelta(hours=1))
    assert read_at == again == NOW
    # pm-1 sees their own two items and the pm role's two; the role's items are read per person.
    assert service_layer.mark_all_read(uow, "acme", "pm-1", ["pm"], NOW) == 3
    assert service_layer.mark_all_read(uow, "acme", "pm-1", ["pm"], NOW) == 0
    assert service_layer.mark_all_read(uow, "acme", "someone-else", ["pm"], NOW) == 2
    with pytest.raises(NotFound):
        service_layer.mark_read(uow, "acme", "vendor-1", ["vendor"], first.id, NOW)
