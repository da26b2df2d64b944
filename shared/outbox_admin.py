"""`/v1/admin/outbox`: the rows the broker refused for good, per organisation, and their retry.

Every service has it. A parked row is one whose event the broker will never take as it is (larger
than the broker allows, an invalid topic): the relay sets it aside so the rows behind it flow. An
organisation's admin sees its own parked events (type, id, reason; never the payload) and, once the
cause is fixed (a broker limit raised), sends one back to publishing.
"""
from __future__ import annotations


from fastapi import APIRouter, Depends, Request
from sqlalchemy import select, update

from shared.auth import Principal, require
from shared.envelope import org_of
from shared.errors import NotFound

router = APIRouter(prefix="/v1/admin/outbox", tags=["operations"])
ADMIN = require("admin")
LIMIT = 200


def _of_org(row, org: str) -> bool:
    return org_of(row.payload) == org


@router.get("/parked")
def parked(request: Request, principal: Principal = Depends(ADMIN)):
    """The organisation's parked events, oldest first (at most 200)."""
    runtime = request.app.state.runtime
    t = runtime.tables["outbox"]
    with runtime.db.read_session() as s:
        rows = s.execute(select(t).where(t.c.parked_at.is_not(None), t.c.published_at.is_(None))
                         .order_by(t.c.id).limit(LIMIT * 10)).all()
    return {"items": [{"event_id": r.event_id, "event_type": r.event_type, "topic": r.topic, "key": r.key,
                       "parked_at": r.parked_at.isoformat(), "reason": r.park_reason}
                      for r in rows if _of_org(r, principal.org)][:LIMIT]}


@router.post("/parked/{event_id}/retry", status_code=202)
def retry(event_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """Publish a parked event again (it is parked again, with the new reason, if it still fails)."""
    runtime = request.app.state.runtime
    t = runtime.tables["outbox"]
    with runtime.db.writer.begin() as conn:
        row = conn.execute(select(t).where(t.c.event_id == event_id, t.c.parked_at.is_not(None))).first()
        if row is None or not _of_org(row, principal.org):
            raise NotFound(f"No parked event {event_id}.")
        conn.execute(update(t).where(t.c.id == row.id).values(parked_at=None, park_reason=None))
    runtime.relay.wake()
    return {"event_id": event_id, "status": "queued"}
