"""Late fees (逾期付款违约金): a daily rate on what is overdue, optionally capped for the contract.

The rules, decided here once:

* Day d of a tranche accrues when d is after the due date and something was still owed at the
  start of d: the base is the tranche amount less the payments received and credits applied
  *before* d. A payment received on day d therefore still counts d as late ("from the day after
  the due date up to and including the day it is paid", 自逾期之日起至实际付清之日止): paying
  one day late costs one day.
* Each day's fee is base × daily rate, rounded half-up to the fen, per tranche and per day; the
  statement shows every day, so anyone can redo the sum.
* The cap, a share of the contract value (rounded half-up to the fen), limits all late fees of
  the contract together. Days are charged in date order (tranche order within a day); the day
  that reaches the cap is charged only what is left under it, later days nothing.
* Each day is charged under the rule in force that day: an amendment that changes the rate or
  the contract value (hence the cap) applies from the day it takes effect, never backwards.
* A tranche an amendment supersedes accrues up to and including the day of the amendment (it
  was owed at the start of that day); the tranche scheduled in its place accrues only from the
  day after, so no day is charged twice (`Exposure.last_day`, `Exposure.first_day`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

from shared.money import ZERO, to_fen

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class LateFeeRule:
    daily_rate: Decimal              # 0.0005 = 0.05 % of the overdue amount per day
    cap: Decimal | None = None       # in money, for the whole contract

    @classmethod
    def from_terms(cls, penalty, contract_value: Decimal) -> "LateFeeRule | None":
        """From `LatePaymentPenalty` (daily_rate, cap_share) and the contract value."""
        if penalty is None:
            return None
        cap = to_fen(contract_value * penalty.cap_share) if penalty.cap_share is not None else None
        return cls(Decimal(penalty.daily_rate), cap)


@dataclass(frozen=True)
class LateFeeTerms:
    """The late-fee rule in force from each date on (None: no late fees from then)."""
    changes: tuple[tuple[dt.date | None, LateFeeRule | None], ...] = ()

    @classmethod
    def from_start(cls, rule: LateFeeRule | None) -> "LateFeeTerms":
        return cls(((None, rule),))

    def on(self, day: dt.date) -> LateFeeRule | None:
        rule = None
        for since, candidate in self.changes:
            if since is None or since <= day:
                rule = candidate
        return rule

    @property
    def current(self) -> LateFeeRule | None:
        return self.changes[-1][1] if self.changes else None

    def amended(self, since: dt.date, rule: LateFeeRule | None) -> "LateFeeTerms":
        if rule == self.current:
            return self
        return LateFeeTerms((*(c for c in self.changes if c[0] is None or c[0] < since), (since, rule)))


@dataclass(frozen=True)
class Movement:
    """Money that stopped being owed on `on` (a payment or credit; negative when a credit is taken back)."""
    on: dt.date
    amount: Decimal


@dataclass(frozen=True)
class Exposure:
    """What one tranche owed and when, as far as late fees are concerned."""
    tranche_id: str
    tranche_key: str
    position: int
    amount: Decimal
    due_date: dt.date
    movements: tuple[Movement, ...] = ()
    last_day: dt.date | None = None  # the tranche stopped existing after this day (superseded)
    first_day: dt.date | None = None  # no late fee before this day (an amendment's tranche: see `schedule`)

    def owed_at_start_of(self, day: dt.date) -> Decimal:
        return self.amount - sum((m.amount for m in self.movements if m.on < day), ZERO)


@dataclass(frozen=True)
class LateFeeDay:
    day: dt.date
    tranche_id: str
    tranche_key: str
    overdue_amount: Decimal
    daily_rate: Decimal
    full_fee: Decimal                # before the cap
    fee: Decimal                     # charged
    cumulative: Decimal              # all late fees of the contract up to and including this line

    @property
    def capped(self) -> bool:
        return self.fee < self.full_fee


@dataclass(frozen=True)
class LateFeeStatement:
    days: tuple[LateFeeDay, ...]
    cap: Decimal | None

    @property
    def total(self) -> Decimal:
        return self.days[-1].cumulative if self.days else ZERO

    def for_tranche(self, tranche_id: str) -> list[LateFeeDay]:
        return [d for d in self.days if d.tranche_id == tranche_id]


def statement(terms: LateFeeTerms | LateFeeRule, exposures: Iterable[Exposure], as_of: dt.date) -> LateFeeStatement:
    """Every late-fee day up to and including `as_of`, in the order they are charged."""
    if isinstance(terms, LateFeeRule):
        terms = LateFeeTerms.from_start(terms)
    exposures = sorted(exposures, key=lambda e: e.position)
    accruing = [(day, e, base) for e in exposures for day, base in _overdue_days(e, as_of)]
    accruing.sort(key=lambda x: (x[0], x[1].position))
    days, cumulative = [], ZERO
    for day, exposure, base in accruing:
        rule = terms.on(day)
        if rule is None:
            continue
        full = to_fen(base * rule.daily_rate)
        fee = full if rule.cap is None else max(ZERO, min(full, rule.cap - cumulative))
        cumulative += fee
        days.append(LateFeeDay(day, exposure.tranche_id, exposure.tranche_key, base, rule.daily_rate,
                               full, fee, cumulative))
    in_force = terms.on(as_of)
    return LateFeeStatement(tuple(days), in_force.cap if in_force else None)


def _overdue_days(exposure: Exposure, as_of: dt.date):
    last = as_of if exposure.last_day is None else min(as_of, exposure.last_day)
    day = exposure.due_date + ONE_DAY
    if exposure.first_day is not None:
        day = max(day, exposure.first_day)
    while day <= last:
        base = exposure.owed_at_start_of(day)
        if base <= 0:
            if not any(m.on >= day for m in exposure.movements):
                return  # settled for good: nothing can become owed again
        else:
            yield day, base
        day += ONE_DAY
