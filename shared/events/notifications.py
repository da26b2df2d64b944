"""Events published by the notifications service on `notifications.events`."""
from __future__ import annotations

from shared.events.base import EventPayload

TOPIC = "notifications.events"


class _NotificationsEvent(EventPayload):
    topic = TOPIC
    contract_id: str
    org: str
