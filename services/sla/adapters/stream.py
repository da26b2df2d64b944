"""The table behind the live stream: every SLA event published, numbered in commit order.

Events leave through the outbox like any other (`SlaUnitOfWork.emit`); a copy with a sequence
number lands here in the same transaction, so `GET /v1/stream` can resume from any
`Last-Event-ID` and every replica serves the same sequence. On PostgreSQL a transaction-scoped
advisory lock makes numbers follow commit order, so a reader never sees number 8 committed before
number 7 and skips 7.
"""
from __future__ import annotations

import json

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from services.sla.adapters.tables import PublishedEventRow
from shared.envelope import Envelope
from shared.events.base import EventPayload
from shared.local_time import utcnow

_STREAM_LOCK = 0x51A_57EA  # any constant shared by every replica of this service


def keep(session: Session, payload: EventPayload, envelope: Envelope) -> None:
    """The stream's copy of an event being written to the outbox (same transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _STREAM_LOCK})
    session.add(PublishedEventRow(org=payload.org, contract_id=payload.contract_id, event_id=envelope.id,
                                  event_type=envelope.type, created_at=utcnow(),
                                  body=json.dumps(envelope.structured(), ensure_ascii=False)))


def events_after(session: Session, org: str, after: int, contract_id: str | None = None,
                 limit: int = 200) -> list[PublishedEventRow]:
    query = (select(PublishedEventRow).where(PublishedEventRow.org == org, PublishedEventRow.seq > after)
             .order_by(PublishedEventRow.seq).limit(limit))
    if contract_id:
        query = query.where(PublishedEventRow.contract_id == contract_id)
    return list(session.scalars(query).all())


def last_seq(session: Session) -> int:
    return session.scalar(select(func.max(PublishedEventRow.seq))) or 0
