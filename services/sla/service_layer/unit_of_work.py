"""The sla service's unit of work: shared.uow.UnitOfWork with the sla repositories hung on it.

Every event the service emits (collected from an aggregate or emitted directly) also gets a
numbered copy in `sla_published_events`, in the same transaction, for the live stream
(`GET /v1/stream`): the outbox stays the one way out, the stream table is a read model of it.
"""
from __future__ import annotations

import datetime as dt

from services.sla.adapters import repository, stream
from shared.envelope import Envelope
from shared.events.base import EventPayload
from shared.uow import UnitOfWork


class SlaUnitOfWork(UnitOfWork):
    def repositories(self) -> None:
        # Clocks and timers are held back and written in bulk (see `repository.PendingWrites`): written before
        # a savepoint opens and before each flush or commit, forgotten by a rollback, so a savepoint undone
        # takes its held-back writes with it.
        self.pending = pending = repository.PendingWrites(self.session)
        self.definitions = repository.DefinitionRepository(self.session, pending)
        self.tickets = repository.TicketRepository(self.session, pending)
        self.samples = repository.SampleRepository(self.session, pending)
        self.timers = repository.TimerRepository(self.session, pending)
        self.windows = repository.WindowRepository(self.session, pending)
        self.periods = repository.PeriodRepository(self.session, pending)
        self.facts = repository.WindowFacts(self.session, pending)
        self.feed_keys = repository.FeedKeyRepository(self.session, pending)

    def __enter__(self) -> "SlaUnitOfWork":
        if self.session.in_transaction():
            self.pending.write()     # what the enclosing level did is its own, not the savepoint's
        return super().__enter__()

    def __exit__(self, exc_type, *rest):
        self.pending.discard()       # left unwritten: this level failed or did not commit
        return super().__exit__(exc_type, *rest)

    def commit(self) -> None:
        self.pending.write()
        super().commit()

    def rollback(self) -> None:
        self.pending.discard()
        super().rollback()

    def emit(self, payload: EventPayload, subject: str | None = None, at: dt.datetime | None = None) -> Envelope:
        envelope = super().emit(payload, subject=subject, at=at)
        stream.keep(self.session, payload, envelope)
        return envelope

    def flush(self) -> None:
        self.pending.write()
        self.session.flush()
