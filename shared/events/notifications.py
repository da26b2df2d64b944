"""Events published by the notifications service on `notifications.events`.

A delivery is one event sent to one recipient through one channel (inbox, e-mail, webhook).
`notification.delivered` and `notification.failed` report how it ended; a failed delivery is
also dead-lettered on `notifications.events.dlq` (the original CloudEvent with `dlq_*` headers
describing the delivery). `webhook_endpoint.disabled` says an endpoint that kept failing was
switched off; the organisation's admins also find it in their in-app inbox.
"""
from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from shared.events.base import EventPayload

TOPIC = "notifications.events"
DLQ_TOPIC = f"{TOPIC}.dlq"

Channel = Literal["inbox", "email", "webhook"]


class _NotificationsEvent(EventPayload):
    topic = TOPIC
    contract_id: str
    org: str


class _DeliveryOutcome(_NotificationsEvent):
    delivery_id: str
    subscription_id: str
    source_event_id: str           # the CloudEvent id of the event notified about
    source_event_type: str
    channel: Channel
    recipient: str                 # user id, role, e-mail address or webhook endpoint id
    attempts: int


class NotificationDelivered(_DeliveryOutcome):
    event_type = "notification.delivered"
    delivered_at: dt.datetime


class NotificationFailed(_DeliveryOutcome):
    """Every attempt failed (retries over the horizon, or a call we refuse to make)."""
    event_type = "notification.failed"
    failed_at: dt.datetime
    error: str | None = None


class WebhookEndpointDisabled(EventPayload):
    """An endpoint that kept failing was disabled; nothing is sent to it until an admin enables it.

    About no contract: keyed (and `ce_subject`) by the endpoint id, so one endpoint's events keep their order."""
    event_type = "webhook_endpoint.disabled"
    topic = TOPIC
    keyed_by: ClassVar[str] = "endpoint id"
    org: str
    endpoint_id: str
    url: str
    reason: str
    disabled_at: dt.datetime

    def subject(self) -> str:
        """The Kafka key: the endpoint id (there is no contract)."""
        return self.endpoint_id
