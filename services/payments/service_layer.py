"""Use cases of the payments service: what happens when a contract, a request or a day arrives.

HTTP routes, event handlers and scheduled jobs all come here. Each use case loads the schedule
through the repository, lets the domain decide, saves the result and hands the domain's events
to the unit of work, inside the caller's transaction (the caller commits).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from decimal import Decimal
from typing import Callable, Sequence

from services.payments.adapters import repository as repo
from services.payments.adapters.tables import CalendarFeedRow
from services.payments.domain.due_dates import local_date, next_local_midnight
from services.payments.domain.ledger import (CreditNote, CreditWithdrawal, Invoice, Payment, invoice_number,
                                             lower_carried_forward)
from services.payments.domain.milestones import Milestone
from services.payments.domain.money import ZERO, to_fen
from services.payments.domain.schedule import PaymentSchedule, new_id, notes_to_lower
from shared.errors import Conflict, NotFound
from shared.events.contracts import ContractTerms
from shared.events.sla import SlaCreditAssessed
from shared.scheduler import claim
from shared.uow import UnitOfWork


# ---------------------------------------------------------------------- from the contracts service

def create_schedule(uow: UnitOfWork, terms: ContractTerms, signed_on: dt.date, now: dt.datetime
                    ) -> PaymentSchedule | None:
    """From `contract.signed`: the schedule, once; a repeated or late copy of the event changes nothing."""
    session = uow.session
    owner = repo.owner_of(session, terms.contract_id)
    if owner is not None:
        if owner != terms.org:
            raise Conflict("This contract id is already used by another organisation.")
        return None
    today = local_date(now)
    schedule = PaymentSchedule.from_terms(terms, signed_on, today)
    schedule.adopt_credits(repo.unattached_credit_notes(session, terms.contract_id), today,
                           repo.credit_withdrawals(session, terms.contract_id))
    repo.add(session, schedule, terms.model_dump(mode="json"), now)
    uow.collect(schedule)
    return schedule


def amend_schedule(uow: UnitOfWork, terms: ContractTerms, signed_on: dt.date, now: dt.datetime) -> bool:
    """From `contract.amended`: re-baseline the unpaid tranches (a contract we never saw signed starts here)."""
    schedule = repo.get_for_system(uow.session, terms.contract_id)
    if schedule is None:
        return create_schedule(uow, terms, signed_on, now) is not None
    if schedule.org != terms.org:
        raise Conflict("This contract id is already used by another organisation.")
    today = local_date(now)
    if not schedule.rebaseline(terms, today, today):
        return False
    repo.save(uow.session, schedule, now, terms=terms.model_dump(mode="json"))
    uow.collect(schedule)
    return True


def terminate_schedule(uow: UnitOfWork, contract_id: str, org: str, on: dt.date, now: dt.datetime) -> bool:
    """From `contract.terminated`: what is not due by `on` is cancelled; what is due stays owed."""
    schedule = repo.get_for_system(uow.session, contract_id)
    if schedule is None or schedule.org != org:
        return False  # nothing was ever scheduled for it here
    schedule.terminate(on, now)
    repo.save(uow.session, schedule, now)
    uow.collect(schedule)
    return True


# ---------------------------------------------------------------------- from the SLA service

def receive_credit(uow: UnitOfWork, credit: SlaCreditAssessed, now: dt.datetime) -> CreditNote | None:
    """From `sla.credit_assessed`: a credit note deducted from the next unpaid tranches."""
    session = uow.session
    if repo.credit_known(session, credit.org, credit.credit_id):
        return None
    today = local_date(now)
    schedule = _schedule_for_credit(session, credit)
    if schedule is None:
        # The contract's schedule has not arrived yet (another topic): keep the credit until it does.
        note = CreditNote(new_id(), credit.credit_id, credit.period, credit.amount, credit.currency,
                          tuple(credit.metric_keys), today)
        repo.add_unattached_credit(session, credit.org, credit.contract_id, note)
        return note
    note = schedule.receive_credit(credit.credit_id, credit.period, credit.amount, credit.currency,
                                   credit.metric_keys, today)
    repo.save(session, schedule, now)
    uow.collect(schedule)
    return note


def withdraw_credit(uow: UnitOfWork, credit: SlaCreditAssessed, amount: Decimal, now: dt.datetime
                    ) -> CreditWithdrawal | None:
    """From a corrected `sla.credit_assessed` that lowered the month's credit: `amount` is taken back, once
    (the withdrawal is kept under the correction's credit id)."""
    session = uow.session
    if repo.credit_known(session, credit.org, credit.credit_id):
        return None
    today, amount = local_date(now), to_fen(amount)
    schedule = _schedule_for_credit(session, credit)
    if schedule is None:
        # Nothing was deducted yet: it all comes off what the month's notes are keeping for the schedule.
        notes = notes_to_lower(repo.unattached_credit_notes(session, credit.contract_id), credit.credit_id,
                               credit.period, amount)
        lower_carried_forward(notes, amount)
        withdrawal = CreditWithdrawal(new_id(), credit.credit_id, credit.replaces, credit.period, amount, today,
                                      amount, ZERO, ZERO, ZERO)
        repo.add_unattached_withdrawal(session, credit.org, credit.contract_id, notes, withdrawal)
        return withdrawal
    withdrawal = schedule.withdraw_credit(credit.credit_id, credit.period, amount, credit.currency, today,
                                          credit.replaces)
    repo.save(session, schedule, now)
    uow.collect(schedule)
    return withdrawal


def _schedule_for_credit(session, credit: SlaCreditAssessed) -> PaymentSchedule | None:
    schedule = repo.get_for_system(session, credit.contract_id)
    if schedule is not None and schedule.org != credit.org:
        raise Conflict("The credit's organisation does not own this contract.")
    return schedule


# ---------------------------------------------------------------------- milestones

def _schedule_of(uow: UnitOfWork, org: str, contract_id: str) -> PaymentSchedule:
    schedule = repo.get(uow.session, org, contract_id, for_update=True)
    if schedule is None:
        raise NotFound(f"No payment schedule for contract {contract_id}.")
    return schedule


def _commit_schedule(uow: UnitOfWork, schedule: PaymentSchedule, now: dt.datetime) -> None:
    repo.save(uow.session, schedule, now)
    uow.collect(schedule)


def reach_milestone(uow: UnitOfWork, org: str, contract_id: str, key: str, by: str, now: dt.datetime,
                    note: str | None) -> Milestone:
    schedule = _schedule_of(uow, org, contract_id)
    milestone = schedule.reach_milestone(key, by, now, local_date(now), note)
    _commit_schedule(uow, schedule, now)
    return milestone


def submit_milestone(uow: UnitOfWork, org: str, contract_id: str, key: str, by: str, now: dt.datetime,
                     evidence: Sequence[str], note: str | None) -> Milestone:
    schedule = _schedule_of(uow, org, contract_id)
    milestone = schedule.submit_milestone(key, by, now, evidence, note)
    _commit_schedule(uow, schedule, now)
    return milestone


def accept_milestone(uow: UnitOfWork, org: str, contract_id: str, key: str, by: str, now: dt.datetime,
                     accepted_on: dt.date | None, comment: str | None) -> PaymentSchedule:
    schedule = _schedule_of(uow, org, contract_id)
    today = local_date(now)
    schedule.accept_milestone(key, by, now, accepted_on or today, today, comment)
    _commit_schedule(uow, schedule, now)
    return schedule


def reject_milestone(uow: UnitOfWork, org: str, contract_id: str, key: str, by: str, now: dt.datetime,
                     comment: str) -> Milestone:
    schedule = _schedule_of(uow, org, contract_id)
    milestone = schedule.reject_milestone(key, by, now, comment)
    _commit_schedule(uow, schedule, now)
    return milestone


# ---------------------------------------------------------------------- invoices and payments

def issue_invoice(uow: UnitOfWork, org: str, contract_id: str, tranche_id: str, by: str, now: dt.datetime,
                  issued_on: dt.date | None) -> tuple[PaymentSchedule, Invoice]:
    """A payment request numbered INV-<year>-<n>: the number is taken only once the request is valid."""
    schedule = _schedule_of(uow, org, contract_id)
    issued_on = issued_on or local_date(now)
    schedule.invoiceable(tranche_id)
    number = invoice_number(issued_on.year, repo.next_invoice_sequence(uow.session, org, issued_on.year))
    invoice = schedule.issue_invoice(tranche_id, number, issued_on, by)
    _commit_schedule(uow, schedule, now)
    return schedule, invoice


def record_payment(uow: UnitOfWork, org: str, contract_id: str, tranche_id: str, amount: Decimal,
                   received_on: dt.date, reference: str, by: str, now: dt.datetime
                   ) -> tuple[PaymentSchedule, Payment]:
    schedule = _schedule_of(uow, org, contract_id)
    payment = schedule.record_payment(tranche_id, amount, received_on, reference, by)
    _commit_schedule(uow, schedule, now)
    return schedule, payment


# ---------------------------------------------------------------------- days passing (scheduler)

def advance_schedules(uow_factory: Callable[[], UnitOfWork], now: dt.datetime) -> tuple[int, dt.datetime]:
    """Release tranches whose trigger day came, mark overdue the unpaid ones after their due date,
    and announce late fees: one transaction per contract, each change claimed by a conditional
    UPDATE so two schedulers never announce the same change twice."""
    today = local_date(now)
    with uow_factory() as uow:
        contract_ids = repo.needing_attention(uow.session, today)
    done = 0
    for contract_id in contract_ids:
        with uow_factory() as uow:
            done += _advance_one(uow, contract_id, today, now)
    return done, next_local_midnight(now)


def _advance_one(uow: UnitOfWork, contract_id: str, today: dt.date, now: dt.datetime) -> int:
    schedule = repo.get_for_system(uow.session, contract_id)
    if schedule is None:
        return 0
    changes = schedule.advance_to(today)
    bookings = schedule.book_late_fees(today)
    table = repo.tranche_table()
    claimed = all(claim(uow.session, table, c.tranche_id, expect_status=c.before, status=c.after) for c in changes)
    claimed = claimed and all(claim(uow.session, table, b.tranche_id, expect_late_fees_through=b.before,
                                    late_fees_through=b.through) for b in bookings)
    if not claimed:
        uow.rollback()  # another scheduler got there first: its events stand, ours are dropped
        return 0
    repo.save(uow.session, schedule, now)
    uow.collect(schedule)
    uow.commit()
    return len(changes) + len(bookings)


# ---------------------------------------------------------------------- calendar feeds

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_feed(uow: UnitOfWork, org: str, owner: str, name: str, now: dt.datetime) -> tuple[CalendarFeedRow, str]:
    """A per-user feed; the secret token is returned once and only its hash is kept."""
    token = secrets.token_urlsafe(32)
    row = CalendarFeedRow(id=new_id(), org=org, owner=owner, name=name, token_hash=hash_token(token),
                          created_at=now)
    repo.add_feed(uow.session, row)
    return row, token


def revoke_feed(uow: UnitOfWork, org: str, owner: str, feed_id: str, now: dt.datetime) -> CalendarFeedRow:
    row = repo.feed(uow.session, org, owner, feed_id)
    if row is None:
        raise NotFound(f"No calendar feed {feed_id}.")
    row.revoked_at = row.revoked_at or now
    return row
