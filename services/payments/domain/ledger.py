"""What was requested, paid and credited against a schedule's tranches."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from services.payments.domain.money import ZERO

INVOICE_NUMBER = re.compile(r"^INV-(\d{4})-(\d{6,})$")


def invoice_number(year: int, sequence: int) -> str:
    """INV-2026-000001: the organisation's invoices of one year, numbered without gaps."""
    return f"INV-{year:04d}-{sequence:06d}"


@dataclass
class Invoice:
    """A payment request (请款单) for what a tranche still owes when it is issued."""
    id: str
    tranche_id: str
    number: str
    amount: Decimal
    currency: str
    issued_on: dt.date
    issued_by: str
    status: Literal["issued", "paid"] = "issued"


@dataclass(frozen=True)
class Payment:
    id: str
    tranche_id: str
    invoice_id: str | None
    amount: Decimal
    received_on: dt.date
    reference: str                    # the bank's transaction reference
    recorded_by: str


@dataclass
class CreditApplication:
    """Part of a credit note deducted from one tranche; taken back if that tranche is replaced."""
    id: str
    credit_note_id: str
    tranche_id: str
    amount: Decimal
    applied_on: dt.date
    reversed_on: dt.date | None = None

    @property
    def in_force(self) -> bool:
        return self.reversed_on is None


@dataclass
class CreditNote:
    """A service credit assessed by the SLA service, deducted from the next unpaid tranches."""
    id: str
    credit_id: str                    # the SLA service's id: one note per assessed credit
    period: str
    amount: Decimal
    currency: str
    metric_keys: tuple[str, ...]
    received_on: dt.date
    applications: list[CreditApplication] = field(default_factory=list)

    @property
    def applied(self) -> Decimal:
        return sum((a.amount for a in self.applications if a.in_force), ZERO)

    @property
    def remaining(self) -> Decimal:
        """Carried forward to the tranches still to come."""
        return self.amount - self.applied
