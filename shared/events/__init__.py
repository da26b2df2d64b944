"""The published event schemas: the only contract between services.

`registry()` maps every `ce_type` to its payload model; docs/asyncapi.yaml is generated from it.
"""
from __future__ import annotations

from shared.events import change_requests, contracts, notifications, payments, sla  # noqa: F401  (registers the models)
from shared.events.base import EventPayload

TOPICS = {
    "contracts": contracts.TOPIC,
    "payments": payments.TOPIC,
    "sla": sla.TOPIC,
    "notifications": notifications.TOPIC,
}
ALL_TOPICS = (*TOPICS.values(), sla.INGEST_TOPIC)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


def _concrete(cls: type) -> list[type[EventPayload]]:
    out = []
    for sub in cls.__subclasses__():
        if "event_type" in sub.__dict__ and sub.__module__.startswith("shared.events."):
            out.append(sub)
        out.extend(_concrete(sub))
    return out


def registry() -> dict[str, type[EventPayload]]:
    return {cls.event_type: cls for cls in _concrete(EventPayload)}
