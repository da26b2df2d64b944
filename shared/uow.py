"""Unit of work: one transaction for a state change and the events that describe it.

Handlers and endpoints change state through `uow.session`, record events with `uow.emit(...)`
(or let aggregates collect them in `.events` and `uow.collect(aggregate)`), then `uow.commit()`.
The outbox rows commit atomically with the state; after the commit the relay is woken, so an
event leaves as soon as its transaction is durable and never if it rolls back.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Iterable, Protocol

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from shared.envelope import Envelope
from shared.events.base import EventPayload
from shared.logs import request_id_var


class HasEvents(Protocol):
    events: list[EventPayload]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UnitOfWork:
    def __init__(self, session: Session, outbox: Table, source: str,
                 on_commit: Callable[[], None] | None = None, request_id: str | None = None):
        self.session = session
        self._outbox = outbox
        self._source = source
        self._on_commit = on_commit
        self._request_id = request_id or request_id_var.get()
        self._pending: list[Envelope] = []
        self._tracked: list[HasEvents] = []
        self.committed: list[Envelope] = []

    def __enter__(self) -> "UnitOfWork":
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None or self.session.in_transaction():
            self.rollback()
        self.session.close()

    def emit(self, payload: EventPayload, subject: str | None = None) -> Envelope:
        envelope = Envelope.new(payload, self._source, subject=subject, request_id=self._request_id)
        self._pending.append(envelope)
        return envelope

    def collect(self, *aggregates: HasEvents) -> None:
        """Track aggregates whose `.events` are emitted at commit."""
        self._tracked.extend(aggregates)

    def commit(self) -> None:
        for aggregate in self._tracked:
            while aggregate.events:
                self.emit(aggregate.events.pop(0))
        if self._pending:
            self.session.execute(insert(self._outbox), [_row(e) for e in self._pending])
        self.session.commit()
        self.committed.extend(self._pending)
        self._pending.clear()
        if self._on_commit is not None and self.committed:
            self._on_commit()

    def rollback(self) -> None:
        self._pending.clear()
        self.session.rollback()


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
