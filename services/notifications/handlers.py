"""Events the notifications service consumes: every event of every other service.

One handler serves every event type: it finds the organisation's subscriptions whose patterns
(`sla.*`, `payment.overdue`, ...) match `ce_type` and creates their deliveries. The handler
table answers for any type, so an event type added tomorrow by another service is routed
without a change here. The consumer's inbox makes a redelivered event a no-op; the unique
(event_id, subscription_id) on deliveries makes sure of it even if an event came in twice
under different consumer groups.
"""
from __future__ import annotations

from services.notifications import service_layer
from services.notifications.service_layer import Notifier
from shared.envelope import Envelope
from shared.events import TOPICS, registry
from shared.kafka import Handler, Subscription
from shared.uow import UnitOfWork

CONSUMED_TOPICS = tuple(topic for service, topic in TOPICS.items() if service != "notifications")


class EveryEventType(dict):
    """A handler table that hands any event type to one handler (the known ones are listed, for
    documentation; `get` answers for unknown ones too)."""

    def __init__(self, handler: Handler, known: list[str]):
        super().__init__({t: handler for t in known})
        self.handler = handler

    def get(self, key, default=None):
        return self.handler


def subscription_for(notifier: Notifier) -> Subscription:
    def on_event(envelope: Envelope, uow: UnitOfWork) -> None:
        service_layer.fan_out(notifier, uow, envelope)

    known = sorted(t for t, model in registry().items() if model.topic in CONSUMED_TOPICS)
    return Subscription(topics=CONSUMED_TOPICS, handlers=EveryEventType(on_event, known))


default_notifier = Notifier()   # settings read from the environment on first use
subscription = subscription_for(default_notifier)
