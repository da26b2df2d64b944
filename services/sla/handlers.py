"""Events the sla service consumes, and what each one does.

- `contract.activated` / `contract.amended` (contracts.events): the SLA definition is created
  or amended from the `terms` they carry.
- `ticket.event_recorded` / `metric.sample_recorded` (sla.ingest): external feeds, each record signed
  by a feed key of the organisation it names (else it goes to the DLQ), stored once by their source id; input for a contract whose definition has not arrived yet is kept and
  counted when it does.

Each handler calls one use case with the consumer's unit of work (already open: the use case's
own `with uow` is a savepoint in it) and the app's clock. The feed's types have batch handlers: a run
of consecutive ticket events (or samples) of a partition is stored and counted by one use case call,
so a run of 500 costs a few statements per table, not 500 use cases. A run holding an item that cannot
be counted fails as a whole and the consumer bisects it, so that item alone goes to the DLQ. Any other
type on `sla.ingest` is a mistake of the feed and goes to the DLQ (`strict_topics`).
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


def on_ticket_events(envelopes: list[Envelope], uow: SlaUnitOfWork) -> None:
    service_layer.check_feed_signatures(uow, envelopes, uow.settings.feed_key_master())
    events = [envelope.payload(TicketEventRecorded) for envelope in envelopes]
    problems = [p for event in events for p in check_ticket_event(event)]
    if problems:
        raise Invalid("A ticket event cannot be counted.", errors=problems)
    service_layer.record_feed_ticket_events(uow, events, uow.clock())


def on_metric_samples(envelopes: list[Envelope], uow: SlaUnitOfWork) -> None:
    service_layer.check_feed_signatures(uow, envelopes, uow.settings.feed_key_master())
    samples = [envelope.payload(MetricSampleRecorded) for envelope in envelopes]
    problems = [p for sample in samples for p in check_sample(sample)]
    if problems:
        raise Invalid("A sample cannot be counted.", errors=problems)
    service_layer.record_feed_samples(uow, samples, uow.clock())


subscription = Subscription(
    topics=(CONTRACTS_TOPIC, INGEST_TOPIC),
    handlers={
        ContractActivated.event_type: on_contract_activated,
        ContractAmended.event_type: on_contract_amended,
    },
    batch_handlers={
        TicketEventRecorded.event_type: on_ticket_events,
        MetricSampleRecorded.event_type: on_metric_samples,
    },
    strict_topics=(INGEST_TOPIC,),
)
