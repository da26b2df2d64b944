"""An organisation's receivables: aging buckets and the monthly cash-flow forecast.

Aging counts what is payable now (due or overdue tranches, at their current balance) by how
many days past its due date it is on the report date. The forecast spreads what is still owed
over the months its due dates fall in, using the milestones' planned dates for tranches not
yet triggered; what is already overdue and what has no date yet are shown on their own lines.
Amounts are never added across currencies.

Both reports are computed two ways with one set of rules: from loaded schedules (`aging`,
`cash_flow`: the use cases' fake unit of work, and the reference the tests compare with) and from
the sums the repository adds up in SQL (`aging_from_sums`, `cash_flow_from_sums`), which is what
the API serves: an organisation's reports then cost a few grouped queries however many contracts
it has.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

from shared.money import ZERO
from services.payments.domain.due_dates import DueTerm
from services.payments.domain.schedule import PaymentSchedule
from services.payments.domain.tranches import Trigger

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


def aging_cutoffs(as_of: dt.date) -> list[tuple[str, dt.date]]:
    """(bucket, earliest due date in it), newest bucket first: the rule of `aging_bucket` as date ranges,
    for a database to bucket with."""
    return [("not_yet_due", as_of), ("1_30", _days_before(as_of, 30)),
            ("31_60", _days_before(as_of, 60)), ("61_90", _days_before(as_of, 90))]


def _days_before(day: dt.date, days: int) -> dt.date:
    """`days` before `day`, or the first day of the calendar: no due date is earlier (an as-of date in
    the first days of year 1 must not overflow)."""
    return day - dt.timedelta(days=days) if day > dt.date.min + dt.timedelta(days=days) else dt.date.min


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
class AgingSum:
    """What a contract owes in one bucket (payable tranches with something outstanding)."""
    contract_id: str
    number: str
    currency: str
    bucket: str
    amount: Decimal


def aging_from_sums(sums: Iterable[AgingSum], as_of: dt.date) -> AgingReport:
    lines: dict[str, AgingLine] = {}
    for row in sums:
        line = lines.setdefault(row.contract_id, AgingLine(row.contract_id, row.number, row.currency))
        line.buckets[row.bucket] += row.amount
    ordered = sorted(lines.values(), key=lambda line: (line.number, line.contract_id))
    return AgingReport(as_of, [line for line in ordered if line.total > 0])


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


@dataclass(frozen=True)
class DatedSum:
    """Outstanding tranches with a due date, summed by currency, due date and whether payable."""
    currency: str
    due_date: dt.date
    payable: bool
    amount: Decimal
    tranches: int


@dataclass(frozen=True)
class UndatedSum:
    """Outstanding tranches without a due date, summed by how their due date is to be expected:
    from `start` (a trigger day, a milestone's planned day, or the day of the tranche it follows,
    to which `after` is then applied), plus the due term; no start = unscheduled."""
    currency: str
    start: dt.date | None
    after: Trigger | None
    due_term: DueTerm
    payable: bool
    amount: Decimal
    tranches: int

    def expected(self) -> dt.date | None:
        if self.start is None:
            return None
        return self.due_term.due_date(self.after.offset(self.start) if self.after else self.start)


def cash_flow(schedules: Iterable[PaymentSchedule], today: dt.date, months: int) -> list[ForecastLine]:
    """Expected receipts per month from this month on, for `months` months."""
    horizon = months_from(today, months)
    sums: dict[tuple[str, str], list] = defaultdict(lambda: [ZERO, 0])
    for s in schedules:
        _add_schedule(sums, s, today, horizon)
    return _forecast_lines(sums, horizon)


def cash_flow_from_sums(dated: Iterable[DatedSum], undated: Iterable[UndatedSum], today: dt.date, months: int,
                        whole: Iterable[PaymentSchedule] = (), whole_tranches: frozenset[str] = frozenset()
                        ) -> list[ForecastLine]:
    """The forecast from the database's sums; `whole` are schedules loaded for the tranches in
    `whole_tranches` (a chain of tranches each following another, which no sum can project)."""
    horizon = months_from(today, months)
    sums: dict[tuple[str, str], list] = defaultdict(lambda: [ZERO, 0])
    for row in dated:
        _add(sums, _slot(row.due_date, row.payable, today, horizon), row.currency, row.amount, row.tranches)
    for row in undated:
        _add(sums, _slot(row.expected(), row.payable, today, horizon), row.currency, row.amount, row.tranches)
    for s in whole:
        _add_schedule(sums, s, today, horizon, only=whole_tranches)
    return _forecast_lines(sums, horizon)


def _add_schedule(sums, s: PaymentSchedule, today: dt.date, horizon: list[str],
                  only: frozenset[str] | None = None) -> None:
    projected = s.projected_due_dates(today)
    for t in s.active_tranches():
        if t.id in projected and (only is None or t.id in only):
            _add(sums, _slot(projected[t.id], t.is_payable, today, horizon), s.currency, t.outstanding, 1)


def _slot(expected: dt.date | None, payable: bool, today: dt.date, horizon: list[str]) -> str:
    if expected is None:
        return "unscheduled"
    if expected < today and payable:
        return "overdue"
    month = f"{max(expected, today):%Y-%m}"
    return month if month in horizon else "later"


def _add(sums, slot: str, currency: str, amount: Decimal, tranches: int) -> None:
    entry = sums[(slot, currency)]
    entry[0] += amount
    entry[1] += tranches


def _forecast_lines(sums, horizon: list[str]) -> list[ForecastLine]:
    currencies = sorted({c for _, c in sums}) or ["CNY"]
    order = ["overdue", *horizon, "later", "unscheduled"]
    lines = []
    for slot in order:
        for currency in currencies:
            amount, count = sums.get((slot, currency), (ZERO, 0))
            if slot in horizon or count:
                lines.append(ForecastLine(slot, currency, amount, count))
    return lines
