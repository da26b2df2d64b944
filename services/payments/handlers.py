"""Events the payments service consumes, and what each one does.

- `contract.signed`: the payment schedule is created from the `terms` (once: the inbox drops a
  redelivered event, and a schedule that exists is never created again).
- `contract.activated`: creates the schedule only if `contract.signed` never reached us.
- `contract.amended`: re-baselines the unpaid, uninvoiced tranches.
- `contract.terminated`: cancels the tranches not yet due.
- `sla.credit_assessed`: a credit note deducted from the next unpaid tranches; a correction deducts its
  difference, or takes it back when the month's credit went down.

"When" is the event's own time (`ce_time`) as an Asia/Shanghai date, not the moment we read it:
a contract signed on 1 September counts from 1 September even if the event is consumed later.
"""
from __future__ import annotations

import datetime as dt

from services.payments import service_layer
from services.payments.service_layer import PaymentsUnitOfWork
from shared.envelope import Envelope
from shared.errors import Invalid
from shared.events.contracts import TOPIC as CONTRACTS_TOPIC
from shared.events.contracts import (ContractActivated, ContractAmended, ContractSigned, ContractTerminated,
                                     ContractTerms)
from shared.events.sla import TOPIC as SLA_TOPIC
from shared.events.sla import SlaCreditAssessed
from shared.kafka import Subscription
from shared.local_time import local_date


def happened_at(envelope: Envelope, uow: PaymentsUnitOfWork) -> dt.datetime:
    """The event's time (`ce_time`); the app's "now" (`uow.clock`) if the producer left it out."""
    try:
        at = dt.datetime.fromisoformat(envelope.time.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return uow.clock()
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)


def _terms_of(event) -> ContractTerms:
    """The terms an event carries, refused if they describe another contract than the event."""
    if (event.terms.contract_id, event.terms.org) != (event.contract_id, event.org):
        raise Invalid(f"{event.event_type} for {event.contract_id} carries the terms of {event.terms.contract_id}.")
    return event.terms


def on_contract_signed(envelope: Envelope, uow: PaymentsUnitOfWork) -> None:
    event = envelope.payload(ContractSigned)
    at = happened_at(envelope, uow)
    service_layer.create_schedule(uow, _terms_of(event), local_date(at), at)


def on_contract_activated(envelope: Envelope, uow: PaymentsUnitOfWork) -> None:
    event = envelope.payload(ContractActivated)
    at = happened_at(envelope, uow)
    service_layer.create_schedule(uow, _terms_of(event), local_date(at), at)


def on_contract_amended(envelope: Envelope, uow: PaymentsUnitOfWork) -> None:
    event = envelope.payload(ContractAmended)
    at = happened_at(envelope, uow)
    service_layer.amend_schedule(uow, _terms_of(event), local_date(at), at)


def on_contract_terminated(envelope: Envelope, uow: PaymentsUnitOfWork) -> None:
    event = envelope.payload(ContractTerminated)
    service_layer.terminate_schedule(uow, event.contract_id, event.org, event.terminated_on, happened_at(envelope, uow))


def on_credit_assessed(envelope: Envelope, uow: PaymentsUnitOfWork) -> None:
    """A month's credit, or a correction of it (late input re-closed the month): a correction carries
    the month's whole credit and what was assessed before, so only the difference is deducted (as a
    credit note of its own id) or, when the credit went down, taken back. No change: nothing to do."""
    credit, at = envelope.payload(SlaCreditAssessed), happened_at(envelope, uow)
    if credit.difference > 0:
        service_layer.receive_credit(uow, credit.model_copy(update={"amount": credit.difference}), at)
    elif credit.difference < 0:
        service_layer.withdraw_credit(uow, credit, -credit.difference, at)


subscription = Subscription(
    topics=(CONTRACTS_TOPIC, SLA_TOPIC),
    handlers={
        ContractSigned.event_type: on_contract_signed,
        ContractActivated.event_type: on_contract_activated,
        ContractAmended.event_type: on_contract_amended,
        ContractTerminated.event_type: on_contract_terminated,
        SlaCreditAssessed.event_type: on_credit_assessed,
    },
)
