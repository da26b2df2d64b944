"""Input from the feeds.

REST: every item must name a contract with a definition (a caller of the API is told at once). Kafka
(`sla.ingest`): a run of the topic's records, of any organisations, in one call; the feed may run ahead of
its definition, so such input is kept and counted when it arrives."""
from __future__ import annotations

import datetime as dt
from typing import Callable

from services.sla.service_layer.samples import record_samples
from services.sla.service_layer.tickets import record_ticket_events
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from shared.errors import Invalid, NotFound, field_error
from shared.events.sla import MetricSampleRecorded, TicketEventRecorded

Pointer = Callable[[int], str]


def ingest_ticket_events(uow: SlaUnitOfWork, org: str, events: list[TicketEventRecorded], now: dt.datetime,
                         pointer: Pointer) -> list[str]:
    return _ingest(uow, org, events, now, pointer, record_ticket_events)


def ingest_samples(uow: SlaUnitOfWork, org: str, samples: list[MetricSampleRecorded], now: dt.datetime,
                   pointer: Pointer) -> list[str]:
    return _ingest(uow, org, samples, now, pointer, record_samples)


def record_feed_ticket_events(uow: SlaUnitOfWork, events: list[TicketEventRecorded], now: dt.datetime) -> list[str]:
    """A run of `sla.ingest` ticket events: each organisation's stored and counted together, in one savepoint."""
    return _per_org(uow, events, now, record_ticket_events)


def record_feed_samples(uow: SlaUnitOfWork, samples: list[MetricSampleRecorded], now: dt.datetime) -> list[str]:
    """A run of `sla.ingest` samples: each organisation's stored and counted together, in one savepoint."""
    return _per_org(uow, samples, now, record_samples)


def _per_org(uow: SlaUnitOfWork, items: list, now: dt.datetime, record) -> list[str]:
    statuses: dict[int, str] = {}
    with uow:
        for org in sorted({i.org for i in items}):
            positions = [n for n, i in enumerate(items) if i.org == org]
            statuses.update(zip(positions, record(uow, org, [items[n] for n in positions], now)))
        uow.commit()
    return [statuses[n] for n in range(len(items))]


def _ingest(uow: SlaUnitOfWork, org: str, items: list, now: dt.datetime, pointer: Pointer, record) -> list[str]:
    with uow:
        definitions = uow.definitions.get_many(org, [i.contract_id for i in items])
        unknown = [i for i, item in enumerate(items) if item.contract_id not in definitions]
        if unknown and len(items) == 1:
            raise NotFound(f"No SLA definition for contract {items[0].contract_id}.")
        if unknown:
            raise Invalid("Some items name a contract without an SLA definition.",
                          errors=[field_error(f"{pointer(i)}/contract_id", "no SLA definition for this contract")
                                  for i in unknown[:100]])
        statuses = record(uow, org, items, now, definitions)
        uow.commit()
    return statuses
