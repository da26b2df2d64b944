"""Use cases of the notifications service: fan an event out to its subscribers, send what is
due, settle each attempt, redeliver. Endpoints, handlers, jobs and the CLI call these.

Sending happens outside any database transaction: due deliveries are claimed (status
`sending`, with a deadline) and committed first, then sent, then settled in a second unit of
work. A sender that dies mid-way leaves the claim to expire, and the delivery is tried again.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cached_property
from typing import Callable

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notifications.adapters import repository as repo
from services.notifications.adapters.dead_letters import dead_letter
from services.notifications.adapters.smtp import SmtpSender, compose
from services.notifications.adapters.tables import (AttemptRow, DeliveryRow, EndpointRow, InboxItemRow, InboxReadRow,
                                                    SubscriptionRow)
from services.notifications.adapters.templates import DIGEST, Rendered, Templates
from services.notifications.adapters.webhooks import WebhookSender
from services.notifications.domain.attempts import Outcome, settle
from services.notifications.domain.digest import Batch, Pending, batches
from services.notifications.domain import signing
from services.notifications.domain.endpoints import DisablePolicy, Refused
from services.notifications.domain.events import EventFacts, contract_facts_in, parse_instant
from services.notifications.domain.messages import local_time, message_context
from services.notifications.domain.schedule import RetryPolicy
from services.notifications.domain.subscriptions import Recipient, subscriptions_for
from services.notifications.settings import NotificationSettings
from shared.envelope import Envelope
from shared.errors import Conflict, Invalid, NotFound, field_error
from shared.events.notifications import NotificationDelivered, NotificationFailed, WebhookEndpointDisabled
from shared.scheduler import claim
from shared.uow import UnitOfWork, utcnow

log = logging.getLogger("qiyue.notifications")
ENDPOINT_DISABLED = "the webhook endpoint is disabled"


def new_id() -> str:
    return uuid.uuid4().hex


class Notifier:
    """The service's working parts, built from its settings (one per running instance)."""

    def __init__(self, settings: NotificationSettings | None = None):
        self._settings = settings
        self.clock: Callable[[], dt.datetime] = utcnow
        self.random: Callable[[], float] = random.random
        self.wake: Callable[[], None] = lambda: None     # the scheduler's, once running

    @cached_property
    def settings(self) -> NotificationSettings:
        return self._settings or NotificationSettings.of()

    @cached_property
    def templates(self) -> Templates:
        return Templates(fallback_language=self.settings.default_language)

    @cached_property
    def mail(self) -> SmtpSender:
        return SmtpSender(self.settings)

    @cached_property
    def webhooks(self) -> WebhookSender:
        return WebhookSender(self.settings)

    @property
    def retry(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.seconds("retry_base_s"), s.seconds("retry_cap_s"), s.seconds("retry_horizon_s"))

    @property
    def disabling(self) -> DisablePolicy:
        s = self.settings
        return DisablePolicy(s.seconds("disable_endpoint_after_s"), s.disable_endpoint_after_failed_deliveries)

    def wake_after_commit(self, session: Session) -> None:
        sa_event.listen(session, "after_commit", lambda _s: self.wake(), once=True)


# --- fan-out -----------------------------------------------------------------------------------

def fan_out(notifier: Notifier, uow: UnitOfWork, envelope: Envelope) -> int:
    """Create a delivery for each subscription that wants this event (at most one per recipient,
    and never a second one for the same event and subscription). Inbox items are written at once."""
    facts = facts_of(envelope)
    if facts.org is None:
        log.warning("event %s (%s) names no org; nobody to notify", envelope.id, envelope.type)
        return 0
    session, now = uow.session, notifier.clock()
    known = contract_facts_in(envelope.type, envelope.data)
    if known is not None:
        repo.remember_contract(session, facts.org, known, now)
    chosen = subscriptions_for(facts, repo.active_subscriptions(session, facts.org))
    if not chosen:
        return 0
    taken = repo.subscriptions_already_delivering(session, facts.id)
    live = repo.active_endpoint_ids(session, facts.org)
    created = 0
    for sub in chosen:
        if sub.id in taken or (sub.recipient.kind == "webhook" and sub.recipient.target not in live):
            continue
        plan = sub.plan(facts, now)
        row = DeliveryRow(id=new_id(), org=facts.org, event_id=facts.id, subscription_id=sub.id, event_type=facts.type,
                          topic=envelope.topic, contract_id=facts.contract_id, event=envelope.structured(),
                          channel=plan.channel, recipient=sub.recipient.target, language=sub.language,
                          timezone=sub.timezone, urgent=facts.urgent, digest=plan.digest, status="pending",
                          next_attempt_at=plan.send_at, created_at=now)
        session.add(row)
        if plan.channel == "inbox":
            _deliver_to_inbox(notifier, uow, row, sub.recipient, facts, now)
        created += 1
    session.flush()
    if created:
        notifier.wake_after_commit(session)
    return created


def facts_of(envelope: Envelope) -> EventFacts:
    return EventFacts.of(envelope.id, envelope.type, envelope.subject, envelope.time, envelope.data)


def stored_facts(row: DeliveryRow) -> EventFacts:
    e = row.event
    return EventFacts.of(e["id"], e["type"], e.get("subject", ""), e.get("time", ""), e["data"])


def render(notifier: Notifier, session: Session, event: EventFacts, language: str, timezone: str) -> Rendered:
    contract = repo.contract(session, event.org or "", event.contract_id)
    context = message_context(event, contract, base_url=notifier.settings.public_base_url, timezone=timezone,
                              language=language)
    return notifier.templates.render(event.type, language, context)


def _deliver_to_inbox(notifier: Notifier, uow: UnitOfWork, row: DeliveryRow, recipient: Recipient,
                      facts: EventFacts, now: dt.datetime) -> None:
    message = render(notifier, uow.session, facts, row.language, row.timezone)
    _add_inbox_item(uow.session, row.org, recipient, facts, message, now, delivery_id=row.id)
    uow.session.add(AttemptRow(delivery_id=row.id, org=row.org, number=1, at=now, outcome="delivered", duration_ms=0))
    row.status, row.attempts, row.round_attempts = "delivered", 1, 1
    row.retry_since, row.delivered_at, row.next_attempt_at = now, now, None
    uow.emit(_outcome_event(NotificationDelivered, row, delivered_at=now))


def _add_inbox_item(session: Session, org: str, recipient: Recipient, facts: EventFacts, message: Rendered,
                    now: dt.datetime, delivery_id: str | None) -> None:
    session.add(InboxItemRow(id=new_id(), org=org, recipient_kind=recipient.kind, recipient=recipient.target,
                             delivery_id=delivery_id, event_id=facts.id, event_type=facts.type,
                             contract_id=facts.contract_id or None, subject=message.subject, body=message.text,
                             link=message.link, created_at=now))


def _outcome_event(cls, row: DeliveryRow, **extra):
    return cls(contract_id=row.contract_id, org=row.org, delivery_id=row.id, subscription_id=row.subscription_id,
               source_event_id=row.event_id, source_event_type=row.event_type, channel=row.channel,
               recipient=row.recipient, attempts=row.attempts, **extra)


# --- sending -----------------------------------------------------------------------------------

@dataclass
class Outgoing:
    """One message to send: an e-mail (one delivery, or a digest of several) or a webhook call."""
    rows: tuple[str, ...]
    channel: str
    email: EmailMessage | None = None
    webhook: tuple[str, str, str, bytes] | None = None      # url, secret, message id, body
    verdict: Outcome | None = None                          # decided without sending (e.g. endpoint disabled)
    outcome: Outcome | None = field(default=None)


def send_due(notifier: Notifier, uow_factory: Callable[[], UnitOfWork], now: dt.datetime):
    """The scheduled job: claim what is due, send it, settle each attempt. Returns (sent, next due)."""
    claimed = _claim_due(notifier, uow_factory, now)
    if claimed:
        outgoing = _prepare(notifier, uow_factory, claimed)
        _send_all(notifier, outgoing)
        with uow_factory() as uow:
            for item in outgoing:
                _settle(notifier, uow, item, now)
            uow.commit()
    with uow_factory() as uow:
        wanted = repo.next_due(uow.session)
    return len(claimed), wanted


def _claim_due(notifier: Notifier, uow_factory, now: dt.datetime) -> list[DeliveryRow]:
    table = DeliveryRow.__table__
    until = now + notifier.settings.seconds("claim_timeout_s")
    with uow_factory() as uow:
        due = repo.due_deliveries(uow.session, now, notifier.settings.batch_size)
        claimed = [r for r in due if claim(uow.session, table, r.id, expect_status=r.status, expect_attempts=r.attempts,
                                           status="sending", next_attempt_at=until)]
        uow.commit()
    return claimed


def _pending(row: DeliveryRow) -> Pending:
    """A digest lists events in the order they happened (their CloudEvent time)."""
    return Pending(row.id, row.org, row.channel, row.recipient, row.language, row.digest and row.channel == "email",
                   parse_instant(row.event.get("time")))


def _prepare(notifier: Notifier, uow_factory, claimed: list[DeliveryRow]) -> list[Outgoing]:
    out = []
    with uow_factory() as uow:
        for batch in batches(claimed, _pending):
            try:
                out.append(_prepare_one(notifier, uow.session, batch))
            except Exception as exc:      # a template or data problem: this batch fails, the others go
                log.exception("could not prepare delivery %s", batch.items[0].id)
                out.append(Outgoing(tuple(r.id for r in batch.items), batch.items[0].channel,
                                    verdict=Outcome(False, error=f"could not prepare the message: {exc}"[:1000])))
    return out


def _prepare_one(notifier: Notifier, session: Session, batch: Batch[DeliveryRow]) -> Outgoing:
    rows, first = batch.items, batch.items[0]
    ids = tuple(r.id for r in rows)
    if first.channel == "webhook":
        endpoint = session.get(EndpointRow, first.recipient)
        if endpoint is None or endpoint.org != first.org or endpoint.status != "active":
            return Outgoing(ids, "webhook", verdict=Outcome(False, error=ENDPOINT_DISABLED, refused=True))
        body = json.dumps(first.event, ensure_ascii=False, separators=(",", ":")).encode()
        return Outgoing(ids, "webhook", webhook=(endpoint.url, endpoint.secret, first.id, body))
    sender = notifier.settings.smtp_from
    if batch.is_digest:
        items = []
        for row in rows:
            facts = stored_facts(row)
            message = render(notifier, session, facts, row.language, row.timezone)
            items.append({"subject": message.subject, "link": message.link, "urgent": row.urgent,
                          "event_type": row.event_type, "occurred_at": local_time(facts.time, row.timezone)})
        digest = notifier.templates.render(DIGEST, first.language, {"items": items, "language": first.language})
        email = compose(sender, first.recipient, digest.subject, digest.text, digest.html, reference=f"digest-{first.id}")
    else:
        message = render(notifier, session, stored_facts(first), first.language, first.timezone)
        email = compose(sender, first.recipient, message.subject, message.text, message.html, reference=first.id)
    return Outgoing(ids, "email", email=email)


def _send_all(notifier: Notifier, outgoing: list[Outgoing]) -> None:
    todo = [o for o in outgoing if o.verdict is None]
    if not todo:
        for o in outgoing:
            o.outcome = o.verdict
        return
    with ThreadPoolExecutor(max_workers=max(1, min(notifier.settings.send_concurrency, len(todo))),
                            thread_name_prefix="notifications-send") as pool:
        for o, outcome in zip(todo, pool.map(lambda o: _send_one(notifier, o), todo)):
            o.outcome = outcome
    for o in outgoing:
        if o.verdict is not None:
            o.outcome = o.verdict


def _send_one(notifier: Notifier, item: Outgoing) -> Outcome:
    if item.webhook is not None:
        return notifier.webhooks.send(*item.webhook)
    started = utcnow()
    try:
        notifier.mail.send(item.email)
    except Exception as exc:   # connection, TLS, authentication, refused recipient: retried
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:1000], duration_ms=_ms_since(started))
    return Outcome(True, duration_ms=_ms_since(started))


def _ms_since(started: dt.datetime) -> int:
    return int((utcnow() - started).total_seconds() * 1000)


def _settle(notifier: Notifier, uow: UnitOfWork, item: Outgoing, now: dt.datetime) -> None:
    outcome = item.outcome or Outcome(False, error="not sent")
    for delivery_id in item.rows:
        row = uow.session.get(DeliveryRow, delivery_id)
        if row is None or row.status != "sending":
            continue   # settled by someone else after our claim ran out
        status = _settle_row(notifier, uow, row, outcome, now)
        if row.channel == "webhook" and outcome.error != ENDPOINT_DISABLED:
            _track_endpoint(notifier, uow, row.org, row.recipient, outcome, status, now)


def _settle_row(notifier: Notifier, uow: UnitOfWork, row: DeliveryRow, outcome: Outcome, now: dt.datetime) -> str:
    row.attempts += 1
    row.round_attempts += 1
    row.retry_since = row.retry_since or now
    uow.session.add(AttemptRow(delivery_id=row.id, org=row.org, number=row.attempts, at=now, outcome=outcome.label,
                               status_code=outcome.status_code, error=outcome.error, duration_ms=outcome.duration_ms))
    settlement = settle(outcome, retry_since=row.retry_since, failures=row.round_attempts, now=now,
                        policy=notifier.retry, random=notifier.random)
    row.status, row.next_attempt_at = settlement.status, settlement.next_attempt_at
    if settlement.status == "delivered":
        row.delivered_at, row.last_error = now, None
        uow.emit(_outcome_event(NotificationDelivered, row, delivered_at=now))
    else:
        row.last_error = outcome.error
    if settlement.status == "failed":
        row.failed_at = now
        uow.emit(_outcome_event(NotificationFailed, row, failed_at=now, error=outcome.error))
        dead_letter(uow.session, row, now)
        log.warning("delivery %s of %s to %s %s failed for good after %d attempts: %s", row.id, row.event_type,
                    row.channel, row.recipient, row.attempts, outcome.error)
    return settlement.status


def _track_endpoint(notifier: Notifier, uow: UnitOfWork, org: str, endpoint_id: str, outcome: Outcome, status: str,
                    now: dt.datetime) -> None:
    endpoint = repo.get_endpoint(uow.session, org, endpoint_id)
    if endpoint is None:
        return
    health = repo.health_of(endpoint)
    if status == "delivered":
        health = health.after_success()
    elif status == "failed":
        health = health.after_failed_delivery(now)
    else:
        health = health.after_failed_attempt(now)
    endpoint.failing_since, endpoint.failed_deliveries = health.failing_since, health.failed_deliveries
    reason = notifier.disabling.reason(health, now)
    if endpoint.status == "active" and reason:
        disable_endpoint(notifier, uow, endpoint, reason, now)


def disable_endpoint(notifier: Notifier, uow: UnitOfWork, endpoint: EndpointRow, reason: str, now: dt.datetime) -> None:
    """Stop calling an endpoint; tell the organisation's admins (inbox) and everyone listening (event)."""
    endpoint.status, endpoint.disabled_at, endpoint.disabled_reason = "disabled", now, reason[:500]
    envelope = uow.emit(WebhookEndpointDisabled(org=endpoint.org, endpoint_id=endpoint.id, url=endpoint.url,
                                                reason=reason, disabled_at=now))
    facts = dataclasses.replace(facts_of(envelope), contract_id="")   # about no contract: no title, no link
    language, timezone = notifier.settings.default_language, notifier.settings.default_timezone
    message = render(notifier, uow.session, facts, language, timezone)
    _add_inbox_item(uow.session, endpoint.org, Recipient("role", "admin"), facts, message, now, delivery_id=None)
    log.warning("webhook endpoint %s (%s) disabled: %s", endpoint.id, endpoint.url, reason)


# --- redelivery --------------------------------------------------------------------------------

def redeliver(uow: UnitOfWork, org: str, delivery_id: str, now: dt.datetime) -> DeliveryRow:
    """Send a delivery again: its attempts go on in its log, with a fresh retry horizon."""
    row = repo.get_delivery(uow.session, org, delivery_id)
    if row is None:
        raise NotFound(f"No delivery {delivery_id}.")
    if row.channel == "inbox":
        raise Conflict("An in-app notification stays in the inbox; there is nothing to send again.")
    if row.status in ("pending", "sending"):
        raise Conflict(f"Delivery {delivery_id} is already on its way (status {row.status}).")
    if row.channel == "webhook":
        endpoint = repo.get_endpoint(uow.session, org, row.recipient)
        if endpoint is None or endpoint.status != "active":
            raise Conflict("The webhook endpoint is disabled; enable it before redelivering.")
    row.status, row.next_attempt_at, row.retry_since, row.round_attempts = "pending", now, now, 0
    row.failed_at, row.last_error = None, None
    return row


# --- subscriptions and endpoints ---------------------------------------------------------------

RECIPIENT_TARGET = {"user": "user", "role": "role", "email": "address", "webhook": "endpoint_id"}


def create_subscription(uow: UnitOfWork, org: str, created_by: str, fields: dict, now: dt.datetime):
    """`fields` as the API validated them (recipient as {"kind": ..., <target field>: ...})."""
    recipient = fields["recipient"]
    kind = recipient["kind"]
    target = recipient[RECIPIENT_TARGET[kind]]
    if kind == "webhook" and repo.get_endpoint(uow.session, org, target) is None:
        raise Invalid("No such webhook endpoint in this organisation.",
                      errors=[field_error("/recipient/endpoint_id", "no such webhook endpoint")])
    quiet = fields.get("quiet_hours") or {}
    row = SubscriptionRow(id=new_id(), org=org, event_types=list(fields["event_types"]),
                          contract_ids=fields.get("contract_ids") or None, severities=fields.get("severities") or None,
                          recipient_kind=kind, recipient=target, language=fields["language"], digest=fields["digest"],
                          digest_at=fields["digest_at"], quiet_start=quiet.get("start"), quiet_end=quiet.get("end"),
                          timezone=fields["timezone"], active=fields["active"], created_by=created_by,
                          created_at=now, updated_at=now)
    uow.session.add(row)
    uow.session.flush()
    return row


def update_subscription(uow: UnitOfWork, org: str, subscription_id: str, changes: dict, now: dt.datetime):
    row = repo.get_subscription(uow.session, org, subscription_id)
    if row is None:
        raise NotFound(f"No subscription {subscription_id}.")
    for name in ("event_types", "language", "digest", "digest_at", "timezone", "active"):
        if changes.get(name) is not None:
            setattr(row, name, changes[name])
    for name in ("contract_ids", "severities"):
        if name in changes:
            setattr(row, name, changes[name] or None)
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"] or {}
        row.quiet_start, row.quiet_end = quiet.get("start"), quiet.get("end")
    row.updated_at = now
    return row


def create_endpoint(notifier: Notifier, uow: UnitOfWork, org: str, created_by: str, url: str,
                    description: str | None, now: dt.datetime) -> tuple[EndpointRow, str]:
    """A new endpoint and its signing secret (returned once; kept to sign with)."""
    try:
        notifier.webhooks.check(url)
    except Refused as exc:
        raise Invalid(f"This webhook URL is not allowed: {exc}.", errors=[field_error("/url", str(exc))]) from None
    secret = signing.new_secret()
    row = EndpointRow(id=new_id(), org=org, url=url, description=description, secret=secret, status="active",
                      created_by=created_by, created_at=now)
    uow.session.add(row)
    uow.session.flush()
    return row, secret


def enable_endpoint(uow: UnitOfWork, org: str, endpoint_id: str) -> EndpointRow:
    row = repo.get_endpoint(uow.session, org, endpoint_id)
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    row.status, row.disabled_at, row.disabled_reason = "active", None, None
    row.failing_since, row.failed_deliveries = None, 0
    return row


def delete_endpoint(uow: UnitOfWork, org: str, endpoint_id: str) -> None:
    """Remove an endpoint; its subscriptions stop (deliveries still pending fail as refused)."""
    row = repo.get_endpoint(uow.session, org, endpoint_id)
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    for sub in uow.session.scalars(select(SubscriptionRow).where(
            SubscriptionRow.org == org, SubscriptionRow.recipient_kind == "webhook",
            SubscriptionRow.recipient == endpoint_id)):
        sub.active = False
    uow.session.delete(row)


def mark_read(uow: UnitOfWork, org: str, user: str, roles, item_id: str, now: dt.datetime):
    found = repo.inbox_item(uow.session, org, user, roles, item_id)
    if found is None:
        raise NotFound(f"No inbox item {item_id}.")
    item, read_at = found
    if read_at is None:
        uow.session.add(InboxReadRow(item_id=item.id, user_id=user, read_at=now))
        read_at = now
    return item, read_at


def mark_all_read(uow: UnitOfWork, org: str, user: str, roles, now: dt.datetime) -> int:
    unread = [item for item, read_at in repo.inbox(uow.session, org, user, roles, None, 10_000, unread_only=True)]
    uow.session.add_all(InboxReadRow(item_id=item.id, user_id=user, read_at=now) for item in unread)
    return len(unread)
