"""An organisation's receivables: aging buckets and the monthly cash-flow forecast.

Aging counts what is payable now (due or overdue tranches, at their current balance) by how
many days past its due date it is on the report date. The forecast spreads what is still owed
over the months its due dates fall in, using the milestones' planned dates for tranches not
yet triggered; what is already overdue and what has no date yet are shown on their own lines.
Amounts are never added across currencies.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

from shared.money import ZERO
from services.payments.domain.schedule import PaymentSchedule

AGING_BUCKETS = ("not_yet_due", "1_30", "31_60", "61_90", "over_90")


def aging_bucket(due_date: dt.date, as_of: dt.date) -> str:
    late = (as_of - due_date).days
    if late <= 0:
        return "not_yet_due"
    if late <= 30:
        return "1_30"
    if late <= 60:
        return "31_60"
    if late <= 90:
        return "61_90"
    return "over_90"


@dataclass
class AgingLine:
    contract_id: str
    number: str
    currency: str
    buckets: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(AGING_BUCKETS, ZERO))

    @property
    def total(self) -> Decimal:
        return sum(self.buckets.values(), ZERO)


@dataclass(frozen=True)
class AgingReport:
    as_of: dt.date
    lines: list[AgingLine]

    def totals(self) -> dict[str, dict[str, Decimal]]:
        """Per currency: the sum of each bucket."""
        out: dict[str, dict[str, Decimal]] = {}
        for line in self.lines:
            sums = out.setdefault(line.currency, dict.fromkeys(AGING_BUCKETS, ZERO))
            for bucket, amount in line.buckets.items():
                sums[bucket] += amount
        return out


def aging(schedules: Iterable[PaymentSchedule], as_of: dt.date) -> AgingReport:
    lines = []
    for s in sorted(schedules, key=lambda s: (s.number, s.contract_id)):
        line = AgingLine(s.contract_id, s.number, s.currency)
        for t in s.active_tranches():
            if t.is_payable and t.outstanding > 0:
                line.buckets[aging_bucket(t.due_date, as_of)] += t.outstanding
        if line.total > 0:
            lines.append(line)
    return AgingReport(as_of, lines)


@dataclass(frozen=True)
class ForecastLine:
    month: str                 # "2026-10", or "overdue" / "later" / "unscheduled"
    currency: str
    amount: Decimal
    tranches: int


def months_from(first: dt.date, count: int) -> list[str]:
    year, month = first.year, first.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def cash_flow(schedules: Iterable[PaymentSchedule], today: dt.date, months: int) -> list[ForecastLine]:
    """Expected receipts per month from this month on, for `months` months."""
    horizon = months_from(today, months)
    sums: dict[tuple[str, str], list] = defaultdict(lambda: [ZERO, 0])
    for s in schedules:
        projected = s.projected_due_dates(today)
        for t in s.active_tranches():
            if t.id not in projected:
                continue
            expected = projected[t.id]
            if expected is None:
                slot = "unscheduled"
            elif expected < today and t.is_payable:
                slot = "overdue"
            else:
                month = f"{max(expected, today):%Y-%m}"
                slot = month if month in horizon else "later"
            entry = sums[(slot, s.currency)]
            entry[0] += t.outstanding
            entry[1] += 1
    currencies = sorted({c for _, c in sums}) or ["CNY"]
    order = ["overdue", *horizon, "later", "unscheduled"]
    lines = []
    for slot in order:
        for currency in currencies:
            amount, count = sums.get((slot, currency), (ZERO, 0))
            if slot in horizon or count:
                lines.append(ForecastLine(slot, currency, amount, count))
    return lines
