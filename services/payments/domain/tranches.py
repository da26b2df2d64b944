"""A tranche (分期) of a payment schedule: what it owes, what triggers it, and where it is in its life.

    pending ──trigger known, in the future──▶ scheduled ──trigger day comes──▶ due
       │                                                                       │
       └──────────────── trigger day already here ─────────────────────────────┤
                                                        day after due date ──▶ overdue
    due / overdue ──paid and credited in full──▶ settled
    pending / scheduled ──contract terminated──▶ cancelled
    unpaid, uninvoiced, changed ──contract amended──▶ superseded (kept as history)

Its trigger is the signing, a milestone's acceptance, a fixed date, or N days after another
tranche's trigger (the retained quality-guarantee share, 质保金, released after the warranty).
Its due date is the trigger date plus the contract's due term (`due_dates.DueTerm`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from services.payments.domain.due_dates import DueTerm, add_months
from shared.events.payments import TrancheSummary
from shared.money import ZERO

TrancheStatus = Literal["pending", "scheduled", "due", "overdue", "settled", "cancelled", "superseded"]
PAYABLE = ("due", "overdue")
CLOSED = ("cancelled", "superseded")


@dataclass(frozen=True)
class Trigger:
    kind: Literal["on_signing", "milestone", "fixed_date", "after_tranche"]
    milestone: str | None = None      # milestone: its key
    on: dt.date | None = None         # fixed_date
    after: str | None = None          # after_tranche: the other tranche's key
    days: int | None = None           # after_tranche: calendar days after the other's trigger
    months: int | None = None         # after_tranche without days: the warranty, in months

    def offset(self, day: dt.date) -> dt.date:
        if self.days is not None:
            return day + dt.timedelta(days=self.days)
        return add_months(day, self.months or 0)


@dataclass
class PaymentTranche:
    id: str
    key: str
    label: str
    position: int
    percent: Decimal
    amount: Decimal
    trigger: Trigger
    due_term: DueTerm
    is_retention: bool
    version: int                      # the contract version that scheduled it
    status: TrancheStatus = "pending"
    triggered_on: dt.date | None = None
    due_date: dt.date | None = None
    settled_on: dt.date | None = None
    closed_on: dt.date | None = None  # cancelled or superseded on
    superseded_in: int | None = None
    paid: Decimal = ZERO
    credited: Decimal = ZERO
    late_fees_through: dt.date | None = None  # late fees announced up to this day
    late_fees_from: dt.date | None = None     # scheduled by an amendment: no late fee before this day

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.paid - self.credited

    @property
    def is_active(self) -> bool:
        return self.status not in CLOSED

    @property
    def is_payable(self) -> bool:
        return self.status in PAYABLE

    def summary(self) -> TrancheSummary:
        return TrancheSummary(tranche_id=self.id, key=self.key, label=self.label, amount=self.amount,
                              trigger=self.trigger.kind, status=self.status, due_date=self.due_date,
                              is_retention=self.is_retention)


@dataclass(frozen=True)
class StatusChange:
    """A tranche moved from one status to another (the scheduler claims each one)."""
    tranche_id: str
    before: str
    after: str


@dataclass(frozen=True)
class LateFeeBooking:
    tranche_id: str
    before: dt.date | None
    through: dt.date

