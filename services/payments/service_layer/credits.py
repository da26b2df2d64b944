"""Service credits from the SLA service (`sla.credit_assessed`) and their corrections.

A credit id is applied once: a redelivered or fresh copy finds it known and changes nothing.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.payments.domain.ledger import CreditNote, CreditWithdrawal
from services.payments.domain.schedule import PaymentSchedule
from services.payments.domain.service_credits import waiting_credit, withdraw_waiting_credit
from services.payments.service_layer.unit_of_work import PaymentsUnitOfWork
from shared.errors import Conflict
from shared.events.sla import SlaCreditAssessed
from shared.local_time import local_date
from shared.money import to_fen


def receive_credit(uow: PaymentsUnitOfWork, credit: SlaCreditAssessed, now: dt.datetime) -> CreditNote | None:
    """A credit note deducted from the next unpaid tranches; kept aside if the schedule has not arrived yet."""
    with uow:
        if uow.credits.known(credit.org, credit.credit_id):
            return None
        today = local_date(now)
        schedule = _schedule_for(uow, credit)
        if schedule is None:
            note = waiting_credit(credit.credit_id, credit.period, credit.amount, credit.currency,
                                  credit.metric_keys, today)
            uow.credits.add_waiting(credit.org, credit.contract_id, note)
        else:
            note = schedule.receive_credit(credit.credit_id, credit.period, credit.amount, credit.currency,
                                           credit.metric_keys, today)
            uow.schedules.save(schedule, now)
            uow.collect(schedule)
        uow.commit()
    return note


def withdraw_credit(uow: PaymentsUnitOfWork, credit: SlaCreditAssessed, amount: Decimal, now: dt.datetime
                    ) -> CreditWithdrawal | None:
    """A corrected `sla.credit_assessed` lowered the month's credit: `amount` is taken back, once
    (the withdrawal is kept under the correction's credit id)."""
    with uow:
        if uow.credits.known(credit.org, credit.credit_id):
            return None
        today, amount = local_date(now), to_fen(amount)
        schedule = _schedule_for(uow, credit)
        if schedule is None:
            notes, withdrawal = withdraw_waiting_credit(uow.credits.waiting_notes(credit.org, credit.contract_id),
                                                        credit.credit_id, credit.replaces, credit.period, amount,
                                                        today)
            uow.credits.add_waiting_withdrawal(credit.org, credit.contract_id, notes, withdrawal)
        else:
            withdrawal = schedule.withdraw_credit(credit.credit_id, credit.period, amount, credit.currency, today,
                                                  credit.replaces)
            uow.schedules.save(schedule, now)
            uow.collect(schedule)
        uow.commit()
    return withdrawal


def _schedule_for(uow: PaymentsUnitOfWork, credit: SlaCreditAssessed) -> PaymentSchedule | None:
    schedule = uow.schedules.get_for_system(credit.contract_id)
    if schedule is not None and schedule.org != credit.org:
        raise Conflict("The credit's organisation does not own this contract.")
    return schedule
