"""Amendments (re-baselining to a new contract version) and termination of a schedule.

A mixin of `PaymentSchedule`: what is paid, invoiced or unchanged is kept, the rest is superseded
and re-planned from the amended terms; termination cancels what was not triggered yet.
"""
from __future__ import annotations

import datetime as dt

from services.payments.domain.late_fees import LateFeeRule
from services.payments.domain.terms import milestones_from_terms, same_obligation, tranche_amounts, tranche_from_terms
from services.payments.domain.tranches import PaymentTranche
from shared.errors import Invalid
from shared.events.contracts import ContractTerms
from shared.events.payments import PaymentScheduleRebaselined
from shared.money import ZERO, to_fen


class Amendments:
    """A new contract version re-plans the unpaid tranches; termination cancels the untriggered ones."""

    def rebaseline(self, terms: ContractTerms, on: dt.date, today: dt.date) -> bool:
        """Re-plan the unpaid, uninvoiced tranches to an amended contract; the old ones stay as history.

        Tranches with a payment, an invoice, or settled by credits are kept as they are, and so are
        those the amendment leaves unchanged (`_unchanged`): they simply continue, with their credits
        and late fees. The others are superseded and the amended contract's remaining tranches are
        scheduled in their place, sharing what the kept ones leave of the new total. Credits deducted
        from superseded tranches are taken back and deducted again from the new schedule. A superseded
        tranche accrues late fees up to and including `on` (it was owed at the start of that day); the
        new ones only from the day after, and one already past its due date is overdue at once. An
        older or repeated version changes nothing (False), and so does any amendment after termination.
        """
        if terms.version <= self.version or self.status == "terminated":
            return False
        locked = [t for t in self.active_tranches() if self._is_locked(t)]
        specs = [s for s in terms.tranches if s.key not in {t.key for t in locked}]
        new_total = to_fen(terms.total_amount)
        left = new_total - sum((t.amount for t in locked), ZERO)
        if left < 0 or (left > 0 and not specs):
            raise Invalid(f"The amended total {new_total} does not fit the tranches already paid or invoiced "
                          f"({new_total - left}).")
        amounts = tranche_amounts(specs, left, whole_contract=False) if specs else []
        order = {s.key: i for i, s in enumerate(terms.tranches)}
        planned = {spec.key: tranche_from_terms(spec, amount, order[spec.key], terms) for spec, amount in zip(specs, amounts)}
        unchanged = self._unchanged(planned, {t.key for t in locked})
        kept = {t.id for t in (*locked, *unchanged)}
        superseded = [t for t in self.active_tranches() if t.id not in kept]
        for t in superseded:
            self._release_credits(t, on)
            t.status, t.closed_on, t.superseded_in = "superseded", on, terms.version
        for t in locked:
            t.position = order.get(t.key, len(order) + t.position)
        for t in unchanged:  # what it is called and its share of the new total may read differently
            fresh = planned.pop(t.key)
            t.position, t.label, t.percent = fresh.position, fresh.label, fresh.percent
        for t in planned.values():
            t.late_fees_from = on + dt.timedelta(days=1)
        self.tranches += planned.values()
        self._merge_milestones(terms, on)
        previous = self.version
        self.version, self.total_amount, self.number, self.title = terms.version, new_total, terms.number, terms.title
        self.late_fee_terms = self.late_fee_terms.amended(on, LateFeeRule.from_terms(terms.late_payment, new_total))
        self._check_triggers()
        announced_at = len(self.events)
        self._trigger_known(today)
        self._apply_open_credits(on)
        self._mark_overdue(today)
        self.events.insert(announced_at, PaymentScheduleRebaselined(
            contract_id=self.contract_id, org=self.org, version=self.version, previous_version=previous,
            total_amount=new_total, kept=[t.key for t in self.active_tranches() if t.id in kept],
            superseded=[t.id for t in superseded], tranches=[t.summary() for t in self.active_tranches()]))
        return True

    def _unchanged(self, planned: dict[str, PaymentTranche], kept_keys: set[str]) -> list[PaymentTranche]:
        """The unpaid, uninvoiced tranches the amendment plans exactly as they are: same amount, trigger,
        due term and retention share, and (for one counted from another tranche) following a tranche
        kept too, so their due date cannot move either."""
        same = {t.key: t for t in self.active_tranches() if t.key not in kept_keys and t.key in planned
                and same_obligation(t, planned[t.key])}
        while broken := [k for k, t in same.items() if t.trigger.kind == "after_tranche"
                         and t.trigger.after not in kept_keys and t.trigger.after not in same]:
            for key in broken:
                del same[key]
        return list(same.values())

    def terminate(self, on: dt.date, at: dt.datetime) -> list[PaymentTranche]:
        """Cancel the tranches not yet due on `on`; what is due stays owed. Repeats change nothing."""
        if self.status == "terminated":
            return []
        cancelled = [t for t in self.active_tranches() if t.triggered_on is None or t.triggered_on > on]
        for t in cancelled:
            self._release_credits(t, on)
            t.status, t.closed_on = "cancelled", on
        for m in self.milestones:
            m.withdraw(at, "contract terminated")
        self.status, self.terminated_on = "terminated", on
        self._apply_open_credits(on)
        return cancelled

    def _is_locked(self, t: PaymentTranche) -> bool:
        return t.paid > 0 or t.status == "settled" or any(i.tranche_id == t.id for i in self.invoices)

    def _merge_milestones(self, terms: ContractTerms, on: dt.date) -> None:
        wanted = {m.key: m for m in milestones_from_terms(terms)}
        at = dt.datetime.combine(on, dt.time(), dt.timezone.utc)
        for m in self.milestones:
            if m.key in wanted:
                fresh = wanted.pop(m.key)
                m.label, m.planned_on, m.position = fresh.label, fresh.planned_on, fresh.position
            else:
                m.withdraw(at, f"not in contract version {terms.version}")
        self.milestones += list(wanted.values())

