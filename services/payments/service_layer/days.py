"""Days passing (the `payments-days` job): tranches released, overdue, late fees announced.

One transaction per contract, each change claimed by a conditional UPDATE (the repository's
`claim`), so any number of schedulers announce each change once.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from services.payments.service_layer.unit_of_work import PaymentsUnitOfWork
from shared.local_time import local_date, next_local_midnight


def advance_schedules(uow_factory: Callable[[], PaymentsUnitOfWork], now: dt.datetime) -> tuple[int, dt.datetime]:
    """Release tranches whose trigger day came, mark overdue the unpaid ones after their due date, and
    announce late fees; run again at the next Shanghai midnight."""
    today = local_date(now)
    with uow_factory() as uow:
        contract_ids = uow.schedules.needing_attention(today)
    done = sum(advance_schedule(uow_factory(), contract_id, today, now) for contract_id in contract_ids)
    return done, next_local_midnight(now)


def advance_schedule(uow: PaymentsUnitOfWork, contract_id: str, today: dt.date, now: dt.datetime) -> int:
    """One contract's day: how many changes it announced (0 if another scheduler claimed them first)."""
    with uow:
        schedule = uow.schedules.get_for_system(contract_id)
        if schedule is None:
            return 0
        changes = schedule.advance_to(today)
        bookings = schedule.book_late_fees(today)
        if not uow.schedules.claim(changes, bookings):
            return 0  # another scheduler got there first: its events stand; leaving uncommitted drops ours
        uow.schedules.save(schedule, now)
        uow.collect(schedule)
        uow.commit()
    return len(changes) + len(bookings)
