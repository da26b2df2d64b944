"""`Idempotency-Key` for POSTs that create: the same key and body return the first answer;
the same key with another body is refused (422). The key is stored in the same transaction as
the effect, so a failed request leaves no key behind and can be retried.

A key belongs to the user who sent it (org, sub, scope, key): another user's request with the
same key is another request, never the first user's answer. The key is claimed before the work
is done, so two identical requests racing do the work once: the second waits on the first's
claim (PostgreSQL's unique index; SQLite's write lock) and then answers what it stored. A stored
answer may leave out what must be shown only once (`replay=`: a webhook signing secret).

The one way every service does it: the route builds an `IdempotencyKey` from the header and the
body, the use case wraps its work in `once(uow, key, act)`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared.errors import Invalid
from shared.local_time import utcnow

Answer = tuple[int, Any]          # (HTTP status, JSON body)


@dataclass(frozen=True)
class IdempotencyKey:
    """One creating request: the caller's organisation and user, what it creates (`scope`), its key and body."""
    org: str
    sub: str
    scope: str
    key: str | None
    body: Any

    @property
    def request_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.body, sort_keys=True, default=str).encode()).hexdigest()


def once(uow, key: IdempotencyKey | None, act: Callable[[], Answer],
         replay: Callable[[Any], Any] | None = None) -> Answer:
    """Run `act()` in `uow` and commit, once per key: a retry with the same key and body gets the
    first answer (as `replay(answer)` if given); the same key racing in another request waits and is
    answered alike. No key: just once."""
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
        try:
            _claim(uow.session, table, key)
        except IntegrityError:
            uow.rollback()  # the same key won a race in another request: answer what it answered
            stored = _stored(uow.session, table, key)
            if stored is None:
                raise
            return stored
        status, answer = act()
        uow.session.execute(update(table).where(*_same(table, key)).values(
            status_code=status, response=replay(answer) if replay else answer))
        uow.commit()
    return status, answer


def _claim(session, table: Table, key: IdempotencyKey) -> None:
    """The key's row before the work: a concurrent claim of the same key blocks on it until this
    transaction ends (then fails, and reads the answer), so the work is never done twice."""
    session.execute(insert(table).values(
        org=key.org, sub=key.sub, scope=key.scope, key=key.key, request_hash=key.request_hash,
        status_code=0, response={}, created_at=utcnow()))


def _same(table: Table, key: IdempotencyKey) -> tuple:
    return (table.c.org == key.org, table.c.sub == key.sub, table.c.scope == key.scope, table.c.key == key.key)


def _stored(session, table: Table, key: IdempotencyKey | None) -> Answer | None:
    if key is None or not key.key:
        return None
    row = session.execute(select(table).where(*_same(table, key))).first()
    if row is None:
        return None
    if row.request_hash != key.request_hash:
        raise Invalid("This Idempotency-Key was already used with a different request body.",
                      errors=[{"parameter": "Idempotency-Key", "in": "header", "detail": "reused with another body"}])
    return row.status_code, row.response
