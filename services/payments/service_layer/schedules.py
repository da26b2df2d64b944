"""Schedules from the contracts service: created on signing, re-baselined on amendment, cut on termination.

Called by the consumer inside its own unit of work (which also records the event in the inbox), so
each `with uow` here is a savepoint of it: the consumer's commit makes it durable.
"""
from __future__ import annotations

import datetime as dt

from services.payments.domain.schedule import PaymentSchedule
from services.payments.service_layer.unit_of_work import PaymentsUnitOfWork
from shared.errors import Conflict
from shared.events.contracts import ContractTerms
from shared.local_time import local_date


def create_schedule(uow: PaymentsUnitOfWork, terms: ContractTerms, signed_on: dt.date, now: dt.datetime
                    ) -> PaymentSchedule | None:
    """From `contract.signed`: the schedule, once; a repeated or late copy of the event changes nothing.
    Credits that arrived before it (another topic) are deducted at once."""
    with uow:
        owner = uow.schedules.owner_of(terms.contract_id)
        if owner is not None:
            if owner != terms.org:
                raise Conflict("This contract id is already used by another organisation.")
            return None
        today = local_date(now)
        schedule = PaymentSchedule.from_terms(terms, signed_on, today)
        schedule.adopt_credits(uow.credits.waiting_notes(terms.org, terms.contract_id), today,
                               uow.credits.waiting_withdrawals(terms.org, terms.contract_id))
        uow.schedules.add(schedule, terms.model_dump(mode="json"), now)
        uow.collect(schedule)
        uow.commit()
    return schedule


def amend_schedule(uow: PaymentsUnitOfWork, terms: ContractTerms, signed_on: dt.date, now: dt.datetime) -> bool:
    """From `contract.amended`: re-baseline the unpaid tranches (a contract we never saw signed starts here)."""
    with uow:
        schedule = uow.schedules.get_for_system(terms.contract_id)
        if schedule is None:
            created = create_schedule(uow, terms, signed_on, now) is not None
            uow.commit()
            return created
        if schedule.org != terms.org:
            raise Conflict("This contract id is already used by another organisation.")
        today = local_date(now)
        if not schedule.rebaseline(terms, today, today):
            return False
        uow.schedules.save(schedule, now, terms=terms.model_dump(mode="json"))
        uow.collect(schedule)
        uow.commit()
    return True


def terminate_schedule(uow: PaymentsUnitOfWork, contract_id: str, org: str, on: dt.date, now: dt.datetime) -> bool:
    """From `contract.terminated`: what is not due by `on` is cancelled; what is due stays owed."""
    with uow:
        schedule = uow.schedules.get_for_system(contract_id)
        if schedule is None or schedule.org != org:
            return False  # nothing was ever scheduled for it here
        schedule.terminate(on, now)
        uow.schedules.save(schedule, now)
        uow.collect(schedule)
        uow.commit()
    return True
