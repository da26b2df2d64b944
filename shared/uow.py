"""Unit of work: one transaction for a state change and the events that describe it.

The service layer owns it. A use case is written the same way in every service:

    def accept_milestone(uow, ...):
        with uow:
            schedule = uow.schedules.get(org, contract_id, for_update=True)   # repositories hang off the uow
            schedule.accept_milestone(...)                                   # the aggregate records its events
            uow.collect(schedule)                                            # ... which the uow collects
            uow.commit()

`commit()` writes the collected events to the service's `outbox` table in the same transaction
as the state: there is no state without its event and no event without its state. After the
commit the relay is woken, so an event leaves as soon as its transaction is durable and never if
it rolls back. Each event is stamped (`ce_time`) with the service's clock at the moment of the
change, the same "now" the use case was given.

The first `with` opens the transaction and owns it. A `with` on a unit that is already open is a
savepoint: the consumer applies an event inside its own unit (which also records the event in
the inbox) and the use case's `with uow` / `commit()` nests in it; a use case leaving without
`commit()`, or raising, undoes only what it did. Only the owner's `commit()` ends the transaction.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Iterable, Protocol

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from shared.envelope import Envelope
from shared.events.base import EventPayload
from shared.local_time import utcnow
from shared.logs import request_id_var

__all__ = ["UnitOfWork", "HasEvents", "utcnow", "events_of", "dumps"]


class HasEvents(Protocol):
    events: list[EventPayload]


class UnitOfWork:
    """The SQL unit of work. A service subclasses it to hang its repositories off the session
    (`repositories()`), so use cases reach tables only through them and can be tested against a
    fake unit of work with in-memory repositories."""

    def __init__(self, session: Session, outbox: Table, source: str,
                 on_commit: Callable[[], None] | None = None, request_id: str | None = None,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.session = session
        self.clock = clock
        self._outbox = outbox
        self._source = source
        self._on_commit = on_commit
        self._request_id = request_id or request_id_var.get()
        self._pending: list[Envelope] = []      # emitted, not yet written to the outbox
        self._staged: list[Envelope] = []       # written to the outbox inside the open transaction
        self._tracked: list[HasEvents] = []
        self._savepoints: list[list] = []   # [savepoint, staged, tracked, pending marks, committed]
        self._depth = 0
        self.committed: list[Envelope] = []
        self.repositories()

    def repositories(self) -> None:
        """Attach the service's repositories to `self` (a subclass overrides it)."""

    # --- the transaction ------------------------------------------------------------------------

    def __enter__(self) -> "UnitOfWork":
        if self._depth:
            self._savepoints.append([self.session.begin_nested(), len(self._staged), len(self._tracked),
                                    len(self._pending), False])
        self._depth += 1
        return self

    def __exit__(self, exc_type, *_):
        self._depth -= 1
        if self._depth:
            savepoint, staged, tracked, pending, done = self._savepoints.pop()
            if not done:
                if savepoint.is_active:
                    savepoint.rollback()
                del self._staged[staged:]
                del self._tracked[tracked:]
                del self._pending[pending:]
            return
        if exc_type is not None or self.session.in_transaction():
            self.rollback()
        self.session.close()

    @property
    def nested(self) -> bool:
        return self._depth > 1

    def commit(self) -> None:
        self._collect_events()
        if self._pending:
            self.session.execute(insert(self._outbox), [_row(e) for e in self._pending])
            self._staged.extend(self._pending)
            self._pending.clear()
        if self.nested:
            savepoint = self._savepoints[-1]
            if not savepoint[-1]:
                savepoint[0].commit()
                savepoint[-1] = True
            return
        self.session.commit()
        self.committed.extend(self._staged)
        self._staged.clear()
        self._tracked.clear()
        if self._on_commit is not None and self.committed:
            self._on_commit()

    def rollback(self) -> None:
        if self.nested:   # undo this savepoint only; the owner's transaction goes on
            savepoint, staged, tracked, pending, done = self._savepoints[-1]
            if not done and savepoint.is_active:
                savepoint.rollback()
            del self._staged[staged:], self._tracked[tracked:], self._pending[pending:]
            self._savepoints[-1][-1] = True
            return
        self._pending.clear()
        self._staged.clear()
        self._tracked.clear()
        self.session.rollback()

    # --- events ---------------------------------------------------------------------------------

    def emit(self, payload: EventPayload, subject: str | None = None, at: dt.datetime | None = None) -> Envelope:
        """Record one event directly (prefer aggregates recording their own and `collect`)."""
        envelope = Envelope.new(payload, self._source, subject=subject, request_id=self._request_id,
                                time=at or self.clock())
        self._pending.append(envelope)
        return envelope

    def collect(self, *aggregates: HasEvents) -> None:
        """Track aggregates whose `.events` are written to the outbox at commit."""
        self._tracked.extend(a for a in aggregates if a is not None)

    def _collect_events(self) -> None:
        for aggregate in self._tracked:
            while aggregate.events:
                self.emit(aggregate.events.pop(0))


def _row(envelope: Envelope) -> dict[str, Any]:
    return {
        "event_id": envelope.id,
        "topic": envelope.topic,
        "key": envelope.subject,
        "event_type": envelope.type,
        "headers": dict((k, v.decode()) for k, v in envelope.headers()),
        "payload": envelope.value().decode(),
        "created_at": utcnow(),
        "published_at": None,
    }


def events_of(envelopes: Iterable[Envelope], event_type: str) -> list[Envelope]:
    return [e for e in envelopes if e.type == event_type]


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
