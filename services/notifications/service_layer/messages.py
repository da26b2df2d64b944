"""What a message says, rendered at send time (so a contract title learnt later still shows),
and the inbox item it becomes."""
from __future__ import annotations

import datetime as dt

from services.notifications.adapters.notifier import Notifier
from services.notifications.adapters.templates import Rendered
from services.notifications.domain.deliveries import Delivery
from services.notifications.domain.events import EventFacts
from services.notifications.domain.messages import message_context
from services.notifications.domain.subscriptions import Recipient
from shared.envelope import Envelope


def facts_of(envelope: Envelope) -> EventFacts:
    return EventFacts.of(envelope.id, envelope.type, envelope.subject, envelope.time, envelope.data)


def stored_facts(delivery: Delivery) -> EventFacts:
    """The facts of the event a delivery carries (its CloudEvent in structured form)."""
    e = delivery.event
    return EventFacts.of(e["id"], e["type"], e.get("subject", ""), e.get("time", ""), e["data"])


def render(notifier: Notifier, uow, event: EventFacts, language: str, timezone: str) -> Rendered:
    contract = uow.contracts.get(event.org or "", event.contract_id)
    context = message_context(event, contract, base_url=notifier.settings.public_base_url, timezone=timezone,
                              language=language)
    return notifier.templates.render(event.type, language, context)


def add_inbox_item(uow, org: str, recipient: Recipient, facts: EventFacts, message: Rendered, now: dt.datetime,
                   delivery_id: str | None) -> None:
    uow.inbox.add(org, recipient, facts.id, facts.type, facts.contract_id, message.subject, message.text,
                  message.link, now, delivery_id)
