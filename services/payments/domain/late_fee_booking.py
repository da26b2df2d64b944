"""Late fees (违约金) of a schedule: the day-by-day statement, and booking the days not announced yet.

A mixin of `PaymentSchedule`: the statement itself is computed by `late_fees.statement` from each
tranche's exposure (what it owed, day by day); booking records `late_fee.accrued` once per day.
"""
from __future__ import annotations

import datetime as dt

from services.payments.domain.late_fees import Exposure, LateFeeStatement, Movement, statement
from services.payments.domain.tranches import LateFeeBooking
from shared.events.payments import LateFeeAccrued
from shared.money import ZERO


class LateFeeBookkeeping:
    """The late-fee statement of the contract and the announcement of its days."""

    def late_fees(self, as_of: dt.date) -> LateFeeStatement:
        """Every late-fee day of the contract up to `as_of` (empty when the contract has no penalty)."""
        if not any(rule for _, rule in self.late_fee_terms.changes):
            return LateFeeStatement((), None)
        return statement(self.late_fee_terms, self._exposures(), as_of)

    def book_late_fees(self, today: dt.date) -> list[LateFeeBooking]:
        """Announce the late-fee days not announced yet, one event per tranche."""
        fees = self.late_fees(today)
        bookings = []
        for t in self.tranches:
            after = t.late_fees_through or t.due_date
            days = [d for d in fees.for_tranche(t.id) if after is None or d.day > after]
            if not days:
                continue
            amount = sum((d.fee for d in days), ZERO)
            if amount > 0:
                self._publish(LateFeeAccrued, tranche_id=t.id, tranche_key=t.key, from_day=days[0].day,
                              through_day=days[-1].day, days=len(days), amount=amount,
                              contract_total=days[-1].cumulative, capped=any(d.capped for d in days),
                              currency=self.currency)
            bookings.append(LateFeeBooking(t.id, t.late_fees_through, days[-1].day))
            t.late_fees_through = days[-1].day
        return bookings

    def _exposures(self) -> list[Exposure]:
        out = []
        for t in self.tranches:
            if t.due_date is None or t.status == "cancelled":
                continue
            movements = [Movement(p.received_on, p.amount) for p in self.payments if p.tranche_id == t.id]
            for note in self.credit_notes:
                for a in note.applications:
                    if a.tranche_id == t.id:
                        movements.append(Movement(a.applied_on, a.amount))
                        if a.reversed_on is not None:
                            movements.append(Movement(a.reversed_on, -a.amount))
            out.append(Exposure(t.id, t.key, t.position, t.amount, t.due_date, tuple(movements),
                                last_day=t.closed_on, first_day=t.late_fees_from))
        return out

