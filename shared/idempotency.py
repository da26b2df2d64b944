"""`Idempotency-Key` for POSTs that create: the same key and body return the first answer;
the same key with another body is refused (422). The key is stored in the same transaction as
the effect, so a failed request leaves no key behind and can be retried."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.errors import Invalid
from shared.uow import utcnow


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, table: Table, org: str, scope: str, key: str | None, body: Any) -> tuple[int, Any] | None:
    """The stored answer for this key, or None when the request is new."""
    if not key:
        return None
    row = session.execute(select(table).where(table.c.org == org, table.c.scope == scope, table.c.key == key)).first()
    if row is None:
        return None
    if row.request_hash != request_hash(body):
        raise Invalid("This Idempotency-Key was already used with a different request body.",
                      errors=[{"parameter": "Idempotency-Key", "in": "header", "detail": "reused with another body"}])
    return row.status_code, row.response


def remember(session: Session, table: Table, org: str, scope: str, key: str | None, body: Any,
             status_code: int, response: Any) -> None:
    if key:
        session.execute(insert(table).values(org=org, scope=scope, key=key, request_hash=request_hash(body),
                                             status_code=status_code, response=response, created_at=utcnow()))


def once(uow, table: Table, org: str, scope: str, key: str | None, body: Any, act) -> tuple[int, Any]:
    """Run `act(uow)` -> (status, answer) and commit, once per key: a retry with the same key and body
    gets the first (status, answer); the same key racing in another request is answered alike."""
    stored = replay(uow.session, table, org, scope, key, body)
    if stored is not None:
        return stored
    status, answer = act(uow)
    try:
        remember(uow.session, table, org, scope, key, body, status, answer)
        uow.commit()
    except IntegrityError:
        uow.rollback()  # the same key won a race in another request: answer what it answered
        stored = replay(uow.session, table, org, scope, key, body)
        if stored is None:
            raise
        return stored
    return status, answer
