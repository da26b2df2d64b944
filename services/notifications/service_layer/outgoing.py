"""What one send carries: an e-mail (one delivery, or a recipient's daily digest of several) or
a signed webhook call, prepared from claimed deliveries before anything is sent."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from email.message import EmailMessage

from services.notifications.adapters.notifier import Notifier
from services.notifications.adapters.smtp import compose
from services.notifications.adapters.templates import DIGEST
from services.notifications.domain.attempts import Outcome
from services.notifications.domain.deliveries import Delivery
from services.notifications.domain.digest import Batch, Pending, batches
from services.notifications.domain.events import parse_instant
from services.notifications.domain.messages import local_time
from services.notifications.service_layer.messages import render, stored_facts
from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork

log = logging.getLogger("qiyue.notifications")
ENDPOINT_DISABLED = "the webhook endpoint is disabled"


@dataclass
class Outgoing:
    """One message to send and, once sent, how it went."""
    deliveries: tuple[str, ...]
    channel: str
    email: EmailMessage | None = None
    webhook: tuple[str, str, str, bytes] | None = None      # url, secret, message id, body
    verdict: Outcome | None = None                          # decided without sending (e.g. endpoint disabled)
    outcome: Outcome | None = None


def pending_facts(delivery: Delivery) -> Pending:
    """A digest lists events in the order they happened (their CloudEvent time)."""
    return Pending(delivery.id, delivery.org, delivery.channel, delivery.recipient, delivery.language,
                   delivery.digest and delivery.channel == "email", parse_instant(delivery.event.get("time")))


def prepare(notifier: Notifier, uow: NotificationsUnitOfWork, claimed: list[Delivery]) -> list[Outgoing]:
    """Everything to send for these deliveries (reads only: the unit is not committed)."""
    out = []
    with uow:
        for batch in batches(claimed, pending_facts):
            try:
                out.append(_prepare_one(notifier, uow, batch))
            except Exception as exc:      # a template or data problem: this batch fails, the others go
                log.exception("could not prepare delivery %s", batch.items[0].id)
                out.append(Outgoing(tuple(d.id for d in batch.items), batch.items[0].channel,
                                    verdict=Outcome(False, error=f"could not prepare the message: {exc}"[:1000])))
    return out


def _prepare_one(notifier: Notifier, uow: NotificationsUnitOfWork, batch: Batch[Delivery]) -> Outgoing:
    first = batch.items[0]
    ids = tuple(d.id for d in batch.items)
    if first.channel == "webhook":
        endpoint = uow.endpoints.get(first.org, first.recipient)
        if endpoint is None or not endpoint.active:
            return Outgoing(ids, "webhook", verdict=Outcome(False, error=ENDPOINT_DISABLED, refused=True))
        body = json.dumps(first.event, ensure_ascii=False, separators=(",", ":")).encode()
        return Outgoing(ids, "webhook", webhook=(endpoint.url, endpoint.secret, first.id, body))
    if batch.is_digest:
        return Outgoing(ids, "email", email=_digest(notifier, uow, batch.items))
    message = render(notifier, uow, stored_facts(first), first.language, first.timezone)
    email = compose(notifier.settings.smtp_from, first.recipient, message.subject, message.text, message.html,
                    reference=first.id)
    return Outgoing(ids, "email", email=email)


def _digest(notifier: Notifier, uow: NotificationsUnitOfWork, deliveries: tuple[Delivery, ...]) -> EmailMessage:
    """One mail listing a recipient's digest deliveries, oldest event first."""
    first = deliveries[0]
    items = []
    for delivery in deliveries:
        facts = stored_facts(delivery)
        message = render(notifier, uow, facts, delivery.language, delivery.timezone)
        items.append({"subject": message.subject, "link": message.link, "urgent": delivery.urgent,
                      "event_type": delivery.event_type, "occurred_at": local_time(facts.time, delivery.timezone)})
    digest = notifier.templates.render(DIGEST, first.language, {"items": items, "language": first.language})
    return compose(notifier.settings.smtp_from, first.recipient, digest.subject, digest.text, digest.html,
                   reference=f"digest-{first.id}")
