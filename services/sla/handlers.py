"""Events the sla service consumes, and what each one does.

- `contract.activated` / `contract.amended` (contracts.events): the SLA definition is created
  or amended from the `terms` they carry.
- `ticket.event_recorded` / `metric.sample_recorded` (sla.ingest): external feeds, stored once
  by their source id; input for a contract whose definition has not arrived yet is kept and
  counted when it does.

Each handler calls one use case with the consumer's unit of work (already open: the use case's
own `with uow` is a savepoint in it) and the app's clock.
"""
from __future__ import annotations

from services.sla import service_layer
from services.sla.service_layer import SlaUnitOfWork
from services.sla.domain.samples import check_sample, check_ticket_event
from shared.envelope import Envelope
from shared.errors import Invalid
from shared.events.contracts import TOPIC as CONTRACTS_TOPIC
from shared.events.contracts import ContractActivated, ContractAmended
from shared.events.sla import INGEST_TOPIC, MetricSampleRecorded, TicketEventRecorded
from shared.kafka import Subscription


def on_contract_activated(envelope: Envelope, uow: SlaUnitOfWork) -> None:
    service_layer.apply_contract_terms(uow, envelope.payload(ContractActivated).terms, uow.clock())


def on_contract_amended(envelope: Envelope, uow: SlaUnitOfWork) -> None:
    service_layer.apply_contract_terms(uow, envelope.payload(ContractAmended).terms, uow.clock())


def on_ticket_event(envelope: Envelope, uow: SlaUnitOfWork) -> None:
    event = envelope.payload(TicketEventRecorded)
    problems = check_ticket_event(event)
    if problems:
        raise Invalid("The ticket event cannot be counted.", errors=problems)
    service_layer.record_ticket_events(uow, event.org, [event], uow.clock())


def on_metric_sample(envelope: Envelope, uow: SlaUnitOfWork) -> None:
    sample = envelope.payload(MetricSampleRecorded)
    problems = check_sample(sample)
    if problems:
        raise Invalid("The sample cannot be counted.", errors=problems)
    service_layer.record_samples(uow, sample.org, [sample], uow.clock())


subscription = Subscription(
    topics=(CONTRACTS_TOPIC, INGEST_TOPIC),
    handlers={
        ContractActivated.event_type: on_contract_activated,
        ContractAmended.event_type: on_contract_amended,
        TicketEventRecorded.event_type: on_ticket_event,
        MetricSampleRecorded.event_type: on_metric_sample,
    },
)
