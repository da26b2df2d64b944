"""Fan a consumed event out into deliveries, and send one again on request."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable

from services.notifications.adapters.notifier import Notifier
from services.notifications.domain.deliveries import Delivery
from services.notifications.domain.events import contract_facts_in
from services.notifications.domain.subscriptions import subscriptions_for
from services.notifications.service_layer.messages import add_inbox_item, facts_of, render
from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork
from shared.envelope import Envelope
from shared.errors import NotFound
from shared.ids import new_id

log = logging.getLogger("qiyue.notifications")


def fan_out(notifier: Notifier, uow: NotificationsUnitOfWork, envelope: Envelope) -> int:
    """Create a delivery for each subscription that wants this event (at most one per recipient,
    and never a second one for the same event and subscription). Inbox items are written at once.

    Called by the consumer inside its unit (which records the event in the inbox table): here
    `with uow` is a savepoint, committed with the consumer's transaction."""
    facts = facts_of(envelope)
    if facts.org is None:
        log.warning("event %s (%s) names no org; nobody to notify", envelope.id, envelope.type)
        return 0
    now = uow.clock()
    created = 0
    with uow:
        known = contract_facts_in(envelope.type, envelope.data)
        if known is not None:
            uow.contracts.remember(facts.org, known, now)
        chosen = subscriptions_for(facts, uow.subscriptions.active(facts.org))
        taken = uow.deliveries.subscriptions_already_delivering(facts.id) if chosen else set()
        live = uow.endpoints.active_ids(facts.org) if chosen else set()
        for sub in chosen:
            if sub.id in taken or (sub.recipient.kind == "webhook" and sub.recipient.target not in live):
                continue
            plan = sub.plan(facts, now)
            delivery = Delivery(id=new_id(), org=facts.org, event_id=facts.id, subscription_id=sub.id,
                                event_type=facts.type, topic=envelope.topic, contract_id=facts.contract_id,
                                event=envelope.structured(), channel=plan.channel, recipient=sub.recipient.target,
                                language=sub.language, timezone=sub.timezone, urgent=facts.urgent,
                                digest=plan.digest, next_attempt_at=plan.send_at, created_at=now)
            if plan.channel == "inbox":
                message = render(notifier, uow, facts, delivery.language, delivery.timezone)
                add_inbox_item(uow, facts.org, sub.recipient, facts, message, now, delivery_id=delivery.id)
                delivery.deliver_to_inbox(now)
            uow.deliveries.add(delivery)
            uow.collect(delivery)
            created += 1
        uow.commit()
    if created:
        notifier.wake_after_commit(uow)
    return created


def redeliver(uow: NotificationsUnitOfWork, org: str, delivery_id: str, now: dt.datetime,
              wake: Callable[[], None] = lambda: None) -> Delivery:
    """Send a delivery again: its attempts go on in its log, with a fresh retry horizon."""
    with uow:
        delivery = uow.deliveries.get(org, delivery_id)
        if delivery is None:
            raise NotFound(f"No delivery {delivery_id}.")
        endpoint_active = True
        if delivery.channel == "webhook":
            endpoint = uow.endpoints.get(org, delivery.recipient)
            endpoint_active = endpoint is not None and endpoint.active
        delivery.redeliver(now, endpoint_active=endpoint_active)
        uow.deliveries.save(delivery)
        uow.commit()
    wake()
    return delivery
