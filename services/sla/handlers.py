"""Events the sla service consumes, and what each one does.

- `contract.activated` / `contract.amended` (contracts.events): the SLA definition is created
  or amended from the `terms` they carry.
- `ticket.event_recorded` / `metric.sample_recorded` (sla.ingest): external feeds, stored once
  by their source id; input for a contract whose definition has not arrived yet is kept and
  counted when it does.
"""
from __future__ import annotations

from services.sla import service_layer
from services.sla.adapters import repository as repo
from services.sla.domain.samples import check_sample, check_ticket_event
from shared.envelope import Envelope
from shared.errors import Invalid
from shared.events.contracts import TOPIC as CONTRACTS_TOPIC
from shared.events.contracts import ContractActivated, ContractAmended
from shared.events.sla import INGEST_TOPIC, MetricSampleRecorded, TicketEventRecorded
from shared.kafka import Subscription
from shared.uow import UnitOfWork, utcnow


def on_contract_activated(envelope: Envelope, uow: UnitOfWork) -> None:
    service_layer.apply_contract_terms(uow, envelope.payload(ContractActivated).terms, utcnow())


def on_contract_amended(envelope: Envelope, uow: UnitOfWork) -> None:
    service_layer.apply_contract_terms(uow, envelope.payload(ContractAmended).terms, utcnow())


def on_ticket_event(envelope: Envelope, uow: UnitOfWork) -> None:
    event = envelope.payload(TicketEventRecorded)
    problems = check_ticket_event(event)
    if problems:
        raise Invalid("The ticket event cannot be counted.", errors=problems)
    definitions = repo.get_definitions(uow.session, event.org, [event.contract_id])
    service_layer.record_ticket_events(uow, event.org, [event], utcnow(), definitions)


def on_metric_sample(envelope: Envelope, uow: UnitOfWork) -> None:
    sample = envelope.payload(MetricSampleRecorded)
    problems = check_sample(sample)
    if problems:
        raise Invalid("The sample cannot be counted.", errors=problems)
    definitions = repo.get_definitions(uow.session, sample.org, [sample.contract_id])
    service_layer.record_samples(uow, sample.org, [sample], utcnow(), definitions)


subscription = Subscription(
    topics=(CONTRACTS_TOPIC, INGEST_TOPIC),
    handlers={
        ContractActivated.event_type: on_contract_activated,
        ContractAmended.event_type: on_contract_amended,
        TicketEventRecorded.event_type: on_ticket_event,
        MetricSampleRecorded.event_type: on_metric_sample,
    },
)
