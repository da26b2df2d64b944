"""What was requested, paid and credited against a schedule's tranches."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Literal

from shared.money import ZERO

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
    """Part of a credit note deducted from one tranche; taken back if that tranche is replaced.

    A negative amount is a debit: credit taken back by a correction that had already gone to a
    paid or invoiced tranche, added to what another tranche owes.
    """
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
    withdrawn: Decimal = ZERO         # taken back by corrections that lowered the month's credit

    @property
    def net(self) -> Decimal:
        """What the note credits once corrections are taken into account."""
        return self.amount - self.withdrawn

    @property
    def applied(self) -> Decimal:
        return sum((a.amount for a in self.applications if a.in_force), ZERO)

    @property
    def remaining(self) -> Decimal:
        """Carried forward to the tranches still to come; negative: a debit no tranche carries yet."""
        return self.net - self.applied


@dataclass(frozen=True)
class CreditWithdrawal:
    """A correction that lowered a month's credit by `amount`, and how it was taken back.

    Kept so that the correction is applied once, however often it is delivered.
    """
    id: str
    credit_id: str                    # the correction's own id (from the SLA service)
    replaces: str | None              # the credit id it corrects
    period: str
    amount: Decimal
    withdrawn_on: dt.date
    from_carried_forward: Decimal     # credit not yet deducted from any tranche
    released: Decimal                 # given back by unpaid, uninvoiced tranches (they owe more)
    debited: Decimal                  # added to the next unpaid, uninvoiced tranche
    owed: Decimal                     # no tranche could carry it: owed on the schedule


def newest_first(notes: Iterable[CreditNote]) -> list[CreditNote]:
    """Notes in the order a correction lowers them: the latest received first (later in the list on a tie)."""
    return sorted(notes, key=lambda n: n.received_on)[::-1]


def lower_carried_forward(notes: Iterable[CreditNote], amount: Decimal) -> Decimal:
    """Lower the notes by what they still carry forward, newest first; returns what is left to take back."""
    for note in newest_first(notes):
        take = min(amount, max(note.remaining, ZERO))
        note.withdrawn += take
        amount -= take
    return amount
