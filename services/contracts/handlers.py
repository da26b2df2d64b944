"""Events the contracts service consumes, and what each one does.

- `invoice.issued` / `payment.received` (payments): the tranche is locked against change
  requests, which may no longer alter its amount or trigger. Contracts learns this from the
  events alone and never asks payments.
"""
from __future__ import annotations

from services.contracts.service_layer.change_requests import lock_tranche
from services.contracts.service_layer.unit_of_work import ContractsUnitOfWork
from shared.envelope import Envelope
from shared.events.payments import TOPIC as PAYMENTS_TOPIC
from shared.events.payments import InvoiceIssued, PaymentReceived
from shared.kafka import Subscription


def on_invoice_issued(envelope: Envelope, uow: ContractsUnitOfWork) -> None:
    event = envelope.payload(InvoiceIssued)
    lock_tranche(uow, event.org, event.contract_id, event.tranche_key, "invoiced", uow.clock())


def on_payment_received(envelope: Envelope, uow: ContractsUnitOfWork) -> None:
    event = envelope.payload(PaymentReceived)
    lock_tranche(uow, event.org, event.contract_id, event.tranche_key, "paid", uow.clock())


subscription = Subscription(
    topics=(PAYMENTS_TOPIC,),
    handlers={InvoiceIssued.event_type: on_invoice_issued, PaymentReceived.event_type: on_payment_received},
)
