"""The payments unit of work: `shared.uow.UnitOfWork` with the payments repositories hung on it.

Use cases reach tables only through these attributes, so they can be tested against a fake unit
of work with in-memory repositories (tests/unit/test_payments_use_cases.py).
"""
from __future__ import annotations

from services.payments.adapters import repository
from shared.uow import UnitOfWork


class PaymentsUnitOfWork(UnitOfWork):
    schedules: repository.ScheduleRepository
    credits: repository.CreditRepository
    invoices: repository.InvoiceRepository
    feeds: repository.FeedRepository

    def repositories(self) -> None:
        self.schedules = repository.ScheduleRepository(self.session)
        self.credits = repository.CreditRepository(self.session)
        self.invoices = repository.InvoiceRepository(self.session)
        self.feeds = repository.FeedRepository(self.session)
