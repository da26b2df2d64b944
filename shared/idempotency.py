"""`Idempotency-Key` for POSTs that create: the same key and body return the first answer;
the same key with another body is refused (422). The key is stored in the same transaction as
the effect, so a failed request leaves no key behind and can be retried.

The one way every service does it: the route builds an `IdempotencyKey` from the header and the
body, the use case wraps its work in `once(uow, key, act)`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError

from shared.errors import Invalid
from shared.local_time import utcnow

Answer = tuple[int, Any]          # (HTTP status, JSON body)


@dataclass(frozen=True)
class IdempotencyKey:
    """One creating request: the caller's organisation, what it creates (`scope`), its key and body."""
    org: str
    scope: str
    key: str | None
    body: Any

    @property
    def request_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.body, sort_keys=True, default=str).encode()).hexdigest()


def once(uow, key: IdempotencyKey | None, act: Callable[[], Answer]) -> Answer:
    """Run `act()` in `uow` and commit, once per key: a retry with the same key and body gets the
    first answer; the same key racing in another request is answered alike. No key: just once."""
    if key is None or not key.key:
        with uow:
            status, answer = act()
            uow.commit()
        return status, answer
    table: Table = uow.idempotency_keys
    with uow:
        stored = _stored(uow.session, table, key)
        if stored is not None:
            return stored
        status, answer = act()
        try:
            uow.session.execute(insert(table).values(
                org=key.org, scope=key.scope, key=key.key, request_hash=key.request_hash,
                status_code=status, response=answer, created_at=utcnow()))
            uow.commit()
        except IntegrityError:
            uow.rollback()  # the same key won a race in another request: answer what it answered
            stored = _stored(uow.session, table, key)
            if stored is None:
                raise
            return stored
    return status, answer


def _stored(session, table: Table, key: IdempotencyKey | None) -> Answer | None:
    if key is None or not key.key:
        return None
    row = session.execute(select(table).where(table.c.org == key.org, table.c.scope == key.scope,
                                              table.c.key == key.key)).first()
    if row is None:
        return None
    if row.request_hash != key.request_hash:
        raise Invalid("This Idempotency-Key was already used with a different request body.",
                      errors=[{"parameter": "Idempotency-Key", "in": "header", "detail": "reused with another body"}])
    return row.status_code, row.response
