"""Tranche release: triggers becoming known, tranches falling due and going overdue as days pass.

A mixin of `PaymentSchedule` (the aggregate root): it reads and changes the schedule's tranches and
milestones and records the events (`payment.due`, `retention.released`, `payment.overdue`).
"""
from __future__ import annotations

import datetime as dt

from services.payments.domain.tranches import PaymentTranche, StatusChange
from shared.errors import Invalid
from shared.events.payments import PaymentDue, PaymentOverdue, RetentionReleased


class TrancheRelease:
    """When each tranche is triggered, falls due, goes overdue or is settled."""

    def advance_to(self, today: dt.date) -> list[StatusChange]:
        """Release tranches whose trigger day has come, and mark overdue those unpaid after their due date."""
        changes = []
        for t in self.active_tranches():
            if t.status == "scheduled" and t.triggered_on <= today:
                self._make_due(t)
                changes.append(StatusChange(t.id, "scheduled", "due"))
        return changes + self._mark_overdue(today)

    def projected_due_dates(self, today: dt.date) -> dict[str, dt.date | None]:
        """For each unsettled tranche: its due date, or the one expected from the milestones' planned
        dates (a milestone past its planned date is expected today at the earliest); None if unknown."""
        memo: dict[str, dt.date | None] = {}

        def trigger_of(t: PaymentTranche, seen: frozenset[str]) -> dt.date | None:
            if t.triggered_on is not None:
                return t.triggered_on
            if t.trigger.kind == "milestone":
                m = self.milestone(t.trigger.milestone)
                return max(m.planned_on, today) if m.planned_on and m.status != "withdrawn" else None
            if t.trigger.kind == "after_tranche" and t.trigger.after not in seen:
                other = self._active_by_key(t.trigger.after)
                start = trigger_of(other, seen | {t.key}) if other else None
                return t.trigger.offset(start) if start else None
            return None

        for t in self.active_tranches():
            if t.outstanding <= 0:
                continue
            if t.due_date is not None:
                memo[t.id] = t.due_date
            else:
                start = trigger_of(t, frozenset({t.key}))
                memo[t.id] = t.due_term.due_date(start) if start else None
        return memo

    def _active_by_key(self, key: str) -> PaymentTranche | None:
        return next((t for t in self.active_tranches() if t.key == key), None)

    def _known_trigger_date(self, t: PaymentTranche) -> dt.date | None:
        kind = t.trigger.kind
        if kind == "on_signing":
            return self.signed_on
        if kind == "fixed_date":
            return t.trigger.on
        if kind == "milestone":
            m = self.milestone(t.trigger.milestone)
            return m.accepted_on if m.status == "accepted" else None
        other = self._active_by_key(t.trigger.after)
        return t.trigger.offset(other.triggered_on) if other and other.triggered_on else None

    def _trigger_known(self, today: dt.date) -> None:
        for t in self.active_tranches():
            if t.triggered_on is None:
                on = self._known_trigger_date(t)
                if on is not None:
                    self._trigger(t, on, today)

    def _trigger(self, t: PaymentTranche, on: dt.date, today: dt.date) -> None:
        """The tranche's trigger happened (or will, on `on`); tranches counting from it follow."""
        if t.triggered_on is not None:
            return
        t.triggered_on, t.due_date = on, t.due_term.due_date(on)
        if t.status == "pending":
            if on <= today:
                self._make_due(t)
            else:
                t.status = "scheduled"
        for dependant in self.active_tranches():
            if dependant.trigger.kind == "after_tranche" and dependant.trigger.after == t.key:
                self._trigger(dependant, dependant.trigger.offset(on), today)

    def _mark_overdue(self, today: dt.date) -> list[StatusChange]:
        """Tranches still owing after their due date are overdue, announced once."""
        changes = []
        for t in self.active_tranches():
            if t.status == "due" and t.outstanding > 0 and t.due_date < today:
                t.status = "overdue"
                changes.append(StatusChange(t.id, "due", "overdue"))
                self._publish(PaymentOverdue, tranche_id=t.id, tranche_key=t.key, amount=t.outstanding,
                              currency=self.currency, due_date=t.due_date,
                              overdue_since=t.due_date + dt.timedelta(days=1))
        return changes

    def _make_due(self, t: PaymentTranche) -> None:
        t.status = "due"
        self._publish(PaymentDue, tranche_id=t.id, tranche_key=t.key, label=t.label, amount=t.outstanding,
                      currency=self.currency, triggered_on=t.triggered_on, due_date=t.due_date)
        if t.is_retention:
            self._publish(RetentionReleased, tranche_id=t.id, tranche_key=t.key, amount=t.outstanding,
                          currency=self.currency, released_on=t.triggered_on, due_date=t.due_date)

    def _settle_if_done(self, t: PaymentTranche, on: dt.date) -> None:
        if t.outstanding == 0 and t.status != "settled":
            t.status, t.settled_on = "settled", on
            for invoice in self.invoices:
                if invoice.tranche_id == t.id and invoice.status == "issued":
                    invoice.status = "paid"

    def _check_triggers(self) -> None:
        active = {t.key: t for t in self.active_tranches()}
        for t in active.values():
            if t.trigger.kind == "after_tranche":
                seen, key = {t.key}, t.trigger.after
                while True:
                    other = active.get(key)
                    if other is None:
                        raise Invalid(f"Tranche {t.key!r} follows unknown tranche {key!r}.")
                    if other.trigger.kind != "after_tranche":
                        break
                    if other.trigger.after in seen:
                        raise Invalid(f"Tranche {t.key!r} waits on itself through {sorted(seen)}.")
                    seen.add(other.key)
                    key = other.trigger.after

