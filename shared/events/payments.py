"""Events published by the payments service on `payments.events`."""
from __future__ import annotations

from shared.events.base import EventPayload

TOPIC = "payments.events"


class _PaymentsEvent(EventPayload):
    topic = TOPIC
    contract_id: str
    org: str
