"""Milestones: the vendor's PM reaches and submits them, the client's approver accepts or rejects them.

Acceptance is what triggers milestone tranches: they fall due with their due dates in the same unit.
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from services.payments.domain.milestones import Milestone
from services.payments.domain.schedule import PaymentSchedule
from services.payments.service_layer.unit_of_work import PaymentsUnitOfWork
from shared.errors import NotFound
from shared.local_time import local_date


def schedule_of(uow: PaymentsUnitOfWork, org: str, contract_id: str) -> PaymentSchedule:
    """The organisation's schedule, locked for the change (another organisation's is not found)."""
    schedule = uow.schedules.get(org, contract_id, for_update=True)
    if schedule is None:
        raise NotFound(f"No payment schedule for contract {contract_id}.")
    return schedule


def store(uow: PaymentsUnitOfWork, schedule: PaymentSchedule, now: dt.datetime) -> None:
    """Save the schedule and commit it with the events it recorded."""
    uow.schedules.save(schedule, now)
    uow.collect(schedule)
    uow.commit()


def reach_milestone(uow: PaymentsUnitOfWork, org: str, contract_id: str, key: str, by: str, now: dt.datetime,
                    note: str | None) -> Milestone:
    with uow:
        schedule = schedule_of(uow, org, contract_id)
        milestone = schedule.reach_milestone(key, by, now, local_date(now), note)
        store(uow, schedule, now)
    return milestone


def submit_milestone(uow: PaymentsUnitOfWork, org: str, contract_id: str, key: str, by: str, now: dt.datetime,
                     evidence: Sequence[str], note: str | None) -> Milestone:
    with uow:
        schedule = schedule_of(uow, org, contract_id)
        milestone = schedule.submit_milestone(key, by, now, evidence, note)
        store(uow, schedule, now)
    return milestone


def accept_milestone(uow: PaymentsUnitOfWork, org: str, contract_id: str, key: str, by: str, now: dt.datetime,
                     accepted_on: dt.date | None, comment: str | None) -> PaymentSchedule:
    """The client accepts (on `accepted_on`, default today): the tranches waiting on it become due."""
    with uow:
        schedule = schedule_of(uow, org, contract_id)
        today = local_date(now)
        schedule.accept_milestone(key, by, now, accepted_on or today, today, comment)
        store(uow, schedule, now)
    return schedule


def reject_milestone(uow: PaymentsUnitOfWork, org: str, contract_id: str, key: str, by: str, now: dt.datetime,
                     comment: str) -> Milestone:
    with uow:
        schedule = schedule_of(uow, org, contract_id)
        milestone = schedule.reject_milestone(key, by, now, comment)
        store(uow, schedule, now)
    return milestone
