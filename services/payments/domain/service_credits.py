"""Service credits (服务抵扣) on a schedule: deducting them, carrying them forward, and taking back
what a corrected assessment lowered (release, debit, owed).

A mixin of `PaymentSchedule`; the credit notes and withdrawals themselves are in `ledger`.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Iterable, Sequence

from services.payments.domain.ledger import (CreditApplication, CreditNote, CreditWithdrawal, lower_carried_forward,
                                             newest_first)
from services.payments.domain.tranches import PaymentTranche
from shared.errors import Invalid
from shared.events.payments import CreditApplied, CreditDebited, CreditRelease, CreditWithdrawn
from shared.ids import new_id
from shared.money import ZERO, to_fen


class ServiceCredits:
    """Credits from the SLA service and their corrections."""

    def carried_forward(self) -> Decimal:
        """Credit not yet deducted from any tranche."""
        return sum((max(n.remaining, ZERO) for n in self.credit_notes), ZERO)

    def credit_owed(self) -> Decimal:
        """Credit taken back by corrections that no unpaid, uninvoiced tranche could carry: the client owes it."""
        return sum((max(-n.remaining, ZERO) for n in self.credit_notes), ZERO)

    def receive_credit(self, credit_id: str, period: str, amount: Decimal, currency: str,
                       metric_keys: Iterable[str], on: dt.date) -> CreditNote | None:
        """A service credit from the SLA service; a credit already received is ignored (None)."""
        if self._knows_credit(credit_id):
            return None
        self._expect_currency(credit_id, currency)
        if amount <= 0:
            raise Invalid(f"Credit {credit_id} must be a positive amount.")
        note = CreditNote(new_id(), credit_id, period, to_fen(amount), currency, tuple(metric_keys), on)
        self.credit_notes.append(note)
        self._apply_open_credits(on)
        return note

    def withdraw_credit(self, credit_id: str, period: str, amount: Decimal, currency: str, on: dt.date,
                        replaces: str | None = None) -> CreditWithdrawal | None:
        """A correction lowered `period`'s credit by `amount`: take it back from the month's credit notes.

        Newest notes first, what they still carry forward goes first; then the credit deducted
        from tranches nobody has paid or invoiced is released (they owe more again, the latest
        deduction first). Credit on a paid or invoiced tranche cannot be undone: as much is added
        as a debit to the next unpaid, uninvoiced tranche, or owed on the schedule when there is
        none. A correction already applied is ignored (None).
        """
        if self._knows_credit(credit_id):
            return None
        self._expect_currency(credit_id, currency)
        amount = to_fen(amount)
        notes = notes_to_lower(self.credit_notes, credit_id, period, amount)
        from_carried_forward = amount - lower_carried_forward(notes, amount)
        releases = self._release_for_withdrawal(notes, amount - from_carried_forward, on)
        released = sum((r.amount for r in releases), ZERO)
        debt = left = amount - from_carried_forward - released
        owed_before, announced_at = self.credit_owed(), len(self.events)
        for note in notes:  # the rest sits on paid or invoiced tranches: the notes owe it back
            take = min(left, note.net)
            note.withdrawn += take
            left -= take
        self._apply_open_credits(on)
        owed = min(debt, max(self.credit_owed() - owed_before, ZERO))
        withdrawal = CreditWithdrawal(new_id(), credit_id, replaces, period, amount, on, from_carried_forward,
                                      released, debt - owed, owed)
        self.events.insert(announced_at, CreditWithdrawn(
            contract_id=self.contract_id, org=self.org, credit_id=credit_id, replaces=replaces, period=period,
            amount=amount, from_carried_forward=from_carried_forward, released=releases,
            debited=withdrawal.debited, owed=owed, currency=self.currency, withdrawn_on=on))
        self.credit_withdrawals.append(withdrawal)
        return withdrawal

    def adopt_credits(self, notes: Iterable[CreditNote], on: dt.date,
                      withdrawals: Iterable[CreditWithdrawal] = ()) -> None:
        """Credits assessed (and lowered) before this schedule existed are deducted now."""
        known = {n.credit_id for n in self.credit_notes}
        self.credit_notes += [n for n in notes if n.credit_id not in known]
        known = {w.credit_id for w in self.credit_withdrawals}
        self.credit_withdrawals += [w for w in withdrawals if w.credit_id not in known]
        self._apply_open_credits(on)

    def _unpaid_uninvoiced(self, t: PaymentTranche) -> bool:
        """What a tranche owes may still change: nobody paid it or was asked to (settled by credit alone is fine)."""
        return t.is_active and t.paid == 0 and not any(i.tranche_id == t.id for i in self.invoices)

    def _knows_credit(self, credit_id: str) -> bool:
        return any(n.credit_id == credit_id for n in self.credit_notes) or any(
            w.credit_id == credit_id for w in self.credit_withdrawals)

    def _expect_currency(self, credit_id: str, currency: str) -> None:
        if currency != self.currency:
            raise Invalid(f"Credit {credit_id} is in {currency}; the schedule is in {self.currency}.")

    def _release_for_withdrawal(self, notes: Sequence[CreditNote], amount: Decimal, on: dt.date
                                ) -> list[CreditRelease]:
        """Take back up to `amount` of the notes' credit from unpaid, uninvoiced tranches, the latest deduction
        first. A deduction partly taken back is reversed whole and its kept part applied again from `on`,
        so the late-fee statement sees the tranche owe more from that day only."""
        releases = []
        for note in notes:
            for a in reversed(list(note.applications)):
                t = self.tranche(a.tranche_id)
                take = min(amount, a.amount, note.net)
                if take <= 0 or not a.in_force or not self._unpaid_uninvoiced(t):
                    continue
                a.reversed_on, t.credited = on, t.credited - a.amount
                if take < a.amount:
                    note.applications.append(CreditApplication(new_id(), note.id, t.id, a.amount - take, on))
                    t.credited += a.amount - take
                note.withdrawn += take
                amount -= take
                self._reopen(t, on)
                releases.append(CreditRelease(tranche_id=t.id, tranche_key=t.key, amount=take,
                                              outstanding=t.outstanding, status=t.status))
        return releases

    def _reopen(self, t: PaymentTranche, on: dt.date) -> None:
        """A tranche settled by credit that owes again goes back to where its trigger puts it."""
        if t.status != "settled" or t.outstanding <= 0:
            return
        t.settled_on = None
        t.status = "pending" if t.triggered_on is None else "scheduled" if t.triggered_on > on else "due"

    def _place_debits(self, on: dt.date) -> None:
        """Credit taken back from paid or invoiced tranches is added to the next unpaid, uninvoiced tranche
        (a negative deduction); with none, it stays owed on the schedule until one comes."""
        for note in self.credit_notes:
            if note.remaining >= 0:
                continue
            t = next((t for t in self.active_tranches() if self._unpaid_uninvoiced(t)), None)
            if t is None:
                return
            debit = -note.remaining
            note.applications.append(CreditApplication(new_id(), note.id, t.id, -debit, on))
            t.credited -= debit
            self._reopen(t, on)
            self._publish(CreditDebited, credit_id=note.credit_id, credit_note_id=note.id, tranche_id=t.id,
                          tranche_key=t.key, amount=debit, outstanding=t.outstanding, currency=self.currency,
                          debited_on=on)

    def _apply_open_credits(self, on: dt.date) -> None:
        """Place the debits of corrections, then deduct what credit notes still hold from the next unpaid
        tranches, in schedule order."""
        self._place_debits(on)
        for note in self.credit_notes:
            for t in self.active_tranches():
                if note.remaining <= 0:
                    break
                take = min(note.remaining, t.outstanding)
                if take <= 0:
                    continue
                note.applications.append(CreditApplication(new_id(), note.id, t.id, take, on))
                t.credited += take
                self._publish(CreditApplied, credit_id=note.credit_id, credit_note_id=note.id, tranche_id=t.id,
                              tranche_key=t.key, amount=take, remaining=note.remaining, currency=self.currency,
                              applied_on=on)
                self._settle_if_done(t, on)

    def _release_credits(self, t: PaymentTranche, on: dt.date) -> None:
        for note in self.credit_notes:
            for application in note.applications:
                if application.tranche_id == t.id and application.in_force:
                    application.reversed_on = on
                    t.credited -= application.amount


def notes_to_lower(notes: Iterable[CreditNote], credit_id: str, period: str, amount: Decimal) -> list[CreditNote]:
    """The month's credit notes a correction lowering it by `amount` takes from, newest first.

    A correction taking back more than the month was credited here contradicts what we received:
    it is refused (and waits in the dead-letter topic) rather than guessed at.
    """
    if amount <= 0:
        raise Invalid(f"Credit {credit_id} must take back a positive amount.")
    month = newest_first(n for n in notes if n.period == period)
    held = sum((n.net for n in month), ZERO)
    if amount > held:
        raise Invalid(f"Credit {credit_id} takes back {amount} of the {period} credit, but only {held} was credited.")
    return month




# ---------------------------------------------------------------------- credits waiting for their schedule

def waiting_credit(credit_id: str, period: str, amount: Decimal, currency: str, metric_keys: Iterable[str],
                   on: dt.date) -> CreditNote:
    """A credit whose contract has no schedule here yet (another topic): kept until the schedule comes."""
    return CreditNote(new_id(), credit_id, period, amount, currency, tuple(metric_keys), on)


def withdraw_waiting_credit(notes: Iterable[CreditNote], credit_id: str, replaces: str | None, period: str,
                            amount: Decimal, on: dt.date) -> tuple[list[CreditNote], CreditWithdrawal]:
    """A correction lowering credits still waiting for their schedule: nothing was deducted yet, so it all
    comes off what the month's notes keep for it. Returns the notes as lowered, and the withdrawal."""
    amount = to_fen(amount)
    lowered = notes_to_lower(notes, credit_id, period, amount)
    lower_carried_forward(lowered, amount)
    return lowered, CreditWithdrawal(new_id(), credit_id, replaces, period, amount, on, amount, ZERO, ZERO, ZERO)
