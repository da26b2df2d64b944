"""Events published by the sla service on `sla.events`."""
from __future__ import annotations

from shared.events.base import EventPayload

TOPIC = "sla.events"


class _SlaEvent(EventPayload):
    topic = TOPIC
    contract_id: str
    org: str

INGEST_TOPIC = "sla.ingest"   # external ticket and metric feeds
