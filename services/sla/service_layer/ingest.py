"""Input from the feeds.

REST: every item must name a contract with a definition (a caller of the API is told at once). Kafka
(`sla.ingest`): a run of the topic's records, of any organisations, in one call; the feed may run ahead of
its definition, so such input is kept and counted when it arrives."""
from __future__ import annotations

import datetime as dt
from typing import Callable

from services.sla.domain.definitions import SlaDefinition
from services.sla.domain.samples import check_sample, check_ticket_event, check_timing, sla_starts_at
from services.sla.service_layer.samples import record_samples
from services.sla.service_layer.tickets import record_ticket_events
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from shared.errors import Invalid, NotFound, field_error
from shared.events.sla import MetricSampleRecorded, TicketEventRecorded

Pointer = Callable[[int], str]


def ingest_ticket_events(uow: SlaUnitOfWork, org: str, events: list[TicketEventRecorded], now: dt.datetime,
                         pointer: Pointer) -> list[str]:
    return _ingest(uow, org, events, now, pointer, check_ticket_event, record_ticket_events)


def ingest_samples(uow: SlaUnitOfWork, org: str, samples: list[MetricSampleRecorded], now: dt.datetime,
                   pointer: Pointer) -> list[str]:
    return _ingest(uow, org, samples, now, pointer, check_sample, record_samples)


def record_feed_ticket_events(uow: SlaUnitOfWork, events: list[TicketEventRecorded], now: dt.datetime) -> list[str]:
    """A run of `sla.ingest` ticket events: each organisation's stored and counted together, in one savepoint."""
    return _per_org(uow, events, now, record_ticket_events)


def record_feed_samples(uow: SlaUnitOfWork, samples: list[MetricSampleRecorded], now: dt.datetime) -> list[str]:
    """A run of `sla.ingest` samples: each organisation's stored and counted together, in one savepoint."""
    return _per_org(uow, samples, now, record_samples)


def _per_org(uow: SlaUnitOfWork, items: list, now: dt.datetime, record) -> list[str]:
    """A record timed ahead of the clock or before its contract's SLA fails the run (the consumer bisects it
    to the DLQ). Input for a contract without a definition yet is checked for its range only."""
    statuses: dict[int, str] = {}
    with uow:
        for org in sorted({i.org for i in items}):
            positions = [n for n, i in enumerate(items) if i.org == org]
            mine = [items[n] for n in positions]
            definitions = uow.definitions.get_many(org, [i.contract_id for i in mine])
            problems = _timing_problems(mine, definitions, now, lambda i: f"/{mine[i].source_id}")
            if problems:
                raise Invalid("A feed record cannot be counted at this time.", errors=problems)
            statuses.update(zip(positions, record(uow, org, mine, now, definitions)))
        uow.commit()
    return [statuses[n] for n in range(len(items))]


def _timing_problems(items: list, definitions: dict[str, SlaDefinition], now: dt.datetime,
                     pointer: Pointer) -> list[dict]:
    starts = {cid: sla_starts_at(d.effective_date, d.timezone) for cid, d in definitions.items()}
    return [p for i, item in enumerate(items) if item.contract_id in starts
            for p in check_timing(item, now, starts[item.contract_id], pointer(i))]


def _ingest(uow: SlaUnitOfWork, org: str, items: list, now: dt.datetime, pointer: Pointer, check, record) -> list[str]:
    """Every problem of every item is named in one answer; nothing of a batch is stored if any item has one."""
    with uow:
        definitions = uow.definitions.get_many(org, [i.contract_id for i in items])
        unknown = [i for i, item in enumerate(items) if item.contract_id not in definitions]
        if unknown and len(items) == 1:
            raise NotFound(f"No SLA definition for contract {items[0].contract_id}.")
        problems = [field_error(f"{pointer(i)}/contract_id", "no SLA definition for this contract") for i in unknown]
        for i, item in enumerate(items):
            problems += check(item, pointer(i)) or _timing_problems([item], definitions, now, lambda _: pointer(i))
        if problems:
            raise Invalid("Some items cannot be counted.", errors=problems[:100])
        statuses = record(uow, org, items, now, definitions)
        uow.commit()
    return statuses
