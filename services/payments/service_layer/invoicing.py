"""Invoices (payment requests) and payments received, both creating POSTs with `Idempotency-Key`.

Each use case runs in `shared.idempotency.once`: the key is stored with the effect in one
transaction, and a retry with the same key and body gets the first answer (the JSON of `views`).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.payments import views
from services.payments.domain.ledger import invoice_number
from services.payments.service_layer.milestones import schedule_of
from services.payments.service_layer.unit_of_work import PaymentsUnitOfWork
from shared.idempotency import Answer, IdempotencyKey, once
from shared.local_time import local_date


def issue_invoice(uow: PaymentsUnitOfWork, key: IdempotencyKey | None, org: str, contract_id: str, tranche_id: str,
                  by: str, now: dt.datetime, issued_on: dt.date | None) -> Answer:
    """A payment request numbered INV-<year>-<n>: the number is taken only once the request is valid,
    in the invoice's own transaction (no gaps, no repeats)."""
    def act() -> Answer:
        schedule = schedule_of(uow, org, contract_id)
        on = issued_on or local_date(now)
        schedule.invoiceable(tranche_id)
        number = invoice_number(on.year, uow.invoices.next_sequence(org, on.year))
        invoice = schedule.issue_invoice(tranche_id, number, on, by)
        uow.schedules.save(schedule, now)
        uow.collect(schedule)
        return 201, views.invoice_view(invoice, contract_id)

    return once(uow, key, act)


def record_payment(uow: PaymentsUnitOfWork, key: IdempotencyKey | None, org: str, contract_id: str,
                   tranche_id: str, amount: Decimal, received_on: dt.date, reference: str, by: str,
                   now: dt.datetime) -> Answer:
    """A payment received: partial payments are fine, more than the tranche owes is refused."""
    def act() -> Answer:
        schedule = schedule_of(uow, org, contract_id)
        payment = schedule.record_payment(tranche_id, amount, received_on, reference, by)
        uow.schedules.save(schedule, now)
        uow.collect(schedule)
        return 201, views.payment_view(payment, schedule)

    return once(uow, key, act)
