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
        self.definitions = repository.DefinitionRepository(self.session)
        self.tickets = repository.TicketRepository(self.session)
        self.samples = repository.SampleRepository(self.session)
        self.timers = repository.TimerRepository(self.session)
        self.windows = repository.WindowRepository(self.session)
        self.periods = repository.PeriodRepository(self.session)
        self.facts = repository.WindowFacts(self.session)

    def emit(self, payload: EventPayload, subject: str | None = None, at: dt.datetime | None = None) -> Envelope:
        envelope = super().emit(payload, subject=subject, at=at)
        stream.keep(self.session, payload, envelope)
        return envelope

    def flush(self) -> None:
        self.session.flush()
