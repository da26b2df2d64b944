"""Failed deliveries on `notifications.events.dlq`, written through the outbox.

Like every dead-letter topic of the platform, a record is the original CloudEvent (binary mode:
`ce_*` headers, the payload as value, the contract id as key) with `dlq_*` headers saying what
went wrong: here, which delivery, to whom, after how many attempts, and the last error. It is
written as an outbox row in the same transaction that marks the delivery failed and emits
`notification.failed`, so the three never disagree and the relay publishes it like any event.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import insert
from sqlalchemy.orm import Session

from services.notifications.adapters.tables import metadata
from services.notifications.domain.deliveries import Delivery
from shared.envelope import Envelope
from shared.events.notifications import DLQ_TOPIC


def envelope_of(row: Delivery) -> Envelope:
    e = row.event
    return Envelope(id=e["id"], source=e["source"], type=e["type"], time=e.get("time", ""),
                    subject=e.get("subject", ""), data=e["data"], topic=row.topic)


def dead_letter(session: Session, row: Delivery, now: dt.datetime) -> None:
    envelope = envelope_of(row)
    headers = {k: v.decode() for k, v in envelope.headers()}
    headers.update({
        "dlq_error": (row.last_error or "")[:1000],
        "dlq_error_type": "DeliveryFailed",
        "dlq_original_topic": row.topic,
        "dlq_consumer": "notifications",
        "dlq_attempts": str(row.attempts),
        "dlq_delivery_id": row.id,
        "dlq_subscription_id": row.subscription_id,
        "dlq_channel": row.channel,
        "dlq_recipient": row.recipient,
        "dlq_failed_at": now.isoformat(),
    })
    session.execute(insert(metadata.tables["outbox"]).values(
        event_id=f"dlq-{row.id}-{row.attempts}", topic=DLQ_TOPIC, key=row.contract_id or row.id,
        event_type=row.event_type, headers=headers, payload=envelope.value().decode(), created_at=now,
        published_at=None))

