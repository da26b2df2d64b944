"""Events the notifications service consumes: every event of every other service.

One handler serves every published event type of the other services' topics (the registry in
`shared.events` lists them all, so an event type added there is routed without a change here):
it finds the organisation's subscriptions whose patterns (`sla.*`, `payment.overdue`, ...)
match `ce_type` and creates their deliveries. The consumer's inbox makes a redelivered event a
no-op; the unique (event_id, subscription_id) of deliveries makes sure of it even if the same
event came in under another consumer group.
"""
from __future__ import annotations

from services.notifications import service_layer
from services.notifications.adapters.notifier import Notifier
from services.notifications.service_layer import NotificationsUnitOfWork
from shared.envelope import Envelope
from shared.events import TOPICS, registry
from shared.kafka import Subscription

CONSUMED_TOPICS = tuple(topic for service, topic in TOPICS.items() if service != "notifications")


def subscription_for(notifier: Notifier) -> Subscription:
    def on_event(envelope: Envelope, uow: NotificationsUnitOfWork) -> None:
        service_layer.fan_out(notifier, uow, envelope)

    types = sorted(t for t, model in registry().items() if model.topic in CONSUMED_TOPICS)
    return Subscription(topics=CONSUMED_TOPICS, handlers={t: on_event for t in types})


default_notifier = Notifier()   # settings read from the environment on first use
subscription = subscription_for(default_notifier)
