"""The payment schedule of one contract: the aggregate every payment rule goes through.

A `PaymentSchedule` holds the contract's tranches (分期付款), its milestones, the invoices issued,
the payments received and the service credits deducted. Every change goes through a method
here, which checks the rules and records the events to publish in `.events`.

A tranche's life:

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
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Literal, Sequence

from services.payments.domain.due_dates import DueTerm, add_months
from services.payments.domain.late_fees import (Exposure, LateFeeRule, LateFeeStatement, LateFeeTerms, Movement,
                                                statement)
from services.payments.domain.ledger import (CreditApplication, CreditNote, CreditWithdrawal, Invoice, Payment,
                                             lower_carried_forward, newest_first)
from services.payments.domain.milestones import Milestone
from services.payments.domain.money import FEN, ZERO, allocate, to_fen
from shared.errors import Conflict, Invalid, NotFound, field_error
from shared.events.base import EventPayload
from shared.events.contracts import ContractTerms, Tranche as TrancheTerms
from shared.events.payments import (CreditApplied, CreditDebited, CreditRelease, CreditWithdrawn, InvoiceIssued,
                                    LateFeeAccrued, MilestoneAccepted, MilestoneRejected, MilestoneSubmitted,
                                    PaymentDue, PaymentOverdue, PaymentReceived, PaymentScheduleCreated,
                                    PaymentScheduleRebaselined, RetentionReleased, TrancheSummary)

TrancheStatus = Literal["pending", "scheduled", "due", "overdue", "settled", "cancelled", "superseded"]
PAYABLE = ("due", "overdue")
CLOSED = ("cancelled", "superseded")
HUNDRED = Decimal(100)


def new_id() -> str:
    return uuid.uuid4().hex


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


@dataclass
class PaymentSchedule:
    contract_id: str
    org: str
    number: str
    title: str
    currency: str
    total_amount: Decimal
    version: int
    signed_on: dt.date
    late_fee_terms: LateFeeTerms = field(default_factory=LateFeeTerms)
    status: Literal["active", "terminated"] = "active"
    terminated_on: dt.date | None = None
    tranches: list[PaymentTranche] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    credit_notes: list[CreditNote] = field(default_factory=list)
    credit_withdrawals: list[CreditWithdrawal] = field(default_factory=list)
    events: list[EventPayload] = field(default_factory=list)

    # ------------------------------------------------------------------ creation

    @classmethod
    def from_terms(cls, terms: ContractTerms, signed_on: dt.date, today: dt.date) -> "PaymentSchedule":
        """The schedule of a contract just signed; tranches whose trigger has come are due at once."""
        schedule = cls(contract_id=terms.contract_id, org=terms.org, number=terms.number, title=terms.title,
                       currency=terms.currency, total_amount=to_fen(terms.total_amount), version=terms.version,
                       signed_on=signed_on, late_fee_terms=LateFeeTerms.from_start(
                           LateFeeRule.from_terms(terms.late_payment, to_fen(terms.total_amount))))
        amounts = tranche_amounts(terms.tranches, schedule.total_amount, whole_contract=True)
        schedule.tranches = [_tranche(spec, amount, i, terms) for i, (spec, amount)
                             in enumerate(zip(terms.tranches, amounts))]
        schedule.milestones = _milestones(terms)
        schedule._check_triggers()
        schedule._trigger_known(today)
        schedule.events.insert(0, PaymentScheduleCreated(
            contract_id=schedule.contract_id, org=schedule.org, version=terms.version, currency=schedule.currency,
            total_amount=schedule.total_amount, tranches=[t.summary() for t in schedule.tranches]))
        return schedule

    # ------------------------------------------------------------------ reading

    def tranche(self, tranche_id: str) -> PaymentTranche:
        for t in self.tranches:
            if t.id == tranche_id:
                return t
        raise NotFound(f"No tranche {tranche_id} in this schedule.")

    def milestone(self, key: str) -> Milestone:
        for m in self.milestones:
            if m.key == key:
                return m
        raise NotFound(f"No milestone {key!r} in this schedule.")

    def active_tranches(self) -> list[PaymentTranche]:
        return sorted((t for t in self.tranches if t.is_active), key=lambda t: t.position)

    def history(self) -> list[PaymentTranche]:
        """Tranches replaced by amendments, oldest first."""
        return sorted((t for t in self.tranches if t.status == "superseded"),
                      key=lambda t: (t.superseded_in or 0, t.position))

    def scheduled_total(self) -> Decimal:
        return sum((t.amount for t in self.active_tranches() if t.status != "cancelled"), ZERO)

    def outstanding(self) -> Decimal:
        return sum((t.outstanding for t in self.active_tranches()), ZERO)

    def next_due(self) -> PaymentTranche | None:
        """What the client should pay next: the earliest payable tranche, else the next one scheduled."""
        unsettled = [t for t in self.active_tranches() if t.outstanding > 0 and t.due_date is not None
                     and t.status in (*PAYABLE, "scheduled")]
        unsettled.sort(key=lambda t: (t.status == "scheduled", t.due_date, t.position))
        return unsettled[0] if unsettled else None

    def open_invoice(self, tranche_id: str) -> Invoice | None:
        return next((i for i in self.invoices if i.tranche_id == tranche_id and i.status == "issued"), None)

    def carried_forward(self) -> Decimal:
        """Credit not yet deducted from any tranche."""
        return sum((max(n.remaining, ZERO) for n in self.credit_notes), ZERO)

    def credit_owed(self) -> Decimal:
        """Credit taken back by corrections that no unpaid, uninvoiced tranche could carry: the client owes it."""
        return sum((max(-n.remaining, ZERO) for n in self.credit_notes), ZERO)

    # ------------------------------------------------------------------ milestones

    def reach_milestone(self, key: str, by: str, at: dt.datetime, on: dt.date, note: str | None = None) -> Milestone:
        self._expect_active()
        milestone = self.milestone(key)
        milestone.reach(by, at, on, note)
        return milestone

    def submit_milestone(self, key: str, by: str, at: dt.datetime, evidence: Sequence[str],
                         note: str | None = None) -> Milestone:
        self._expect_active()
        milestone = self.milestone(key)
        milestone.submit(by, at, tuple(evidence), note)
        self._publish(MilestoneSubmitted, milestone_key=key, label=milestone.label, evidence=list(evidence),
                      submitted_by=by, note=note)
        return milestone

    def accept_milestone(self, key: str, by: str, at: dt.datetime, on: dt.date, today: dt.date,
                         comment: str | None = None) -> list[PaymentTranche]:
        """The client accepts: the tranches waiting on this milestone become payable from `on`."""
        self._expect_active()
        if on > today:
            raise Invalid("A milestone cannot be accepted on a future date.",
                          errors=[field_error("/accepted_on", "must not be after today")])
        milestone = self.milestone(key)
        milestone.accept(by, at, on, comment)
        waiting = [t for t in self.active_tranches() if t.trigger.kind == "milestone" and t.trigger.milestone == key]
        self._publish(MilestoneAccepted, milestone_key=key, label=milestone.label, accepted_on=on, accepted_by=by,
                      comment=comment, tranche_keys=[t.key for t in waiting])
        for t in waiting:
            self._trigger(t, on, today)
        return waiting

    def reject_milestone(self, key: str, by: str, at: dt.datetime, comment: str) -> Milestone:
        self._expect_active()
        milestone = self.milestone(key)
        milestone.reject(by, at, comment)
        self._publish(MilestoneRejected, milestone_key=key, label=milestone.label, rejected_by=by, comment=comment)
        return milestone

    # ------------------------------------------------------------------ time passing

    def advance_to(self, today: dt.date) -> list[StatusChange]:
        """Release tranches whose trigger day has come, and mark overdue those unpaid after their due date."""
        changes = []
        for t in self.active_tranches():
            if t.status == "scheduled" and t.triggered_on <= today:
                self._make_due(t)
                changes.append(StatusChange(t.id, "scheduled", "due"))
        return changes + self._mark_overdue(today)

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

    # ------------------------------------------------------------------ invoices and payments

    def issue_invoice(self, tranche_id: str, number: str, issued_on: dt.date, by: str) -> Invoice:
        """A payment request for what the tranche still owes."""
        tranche = self.invoiceable(tranche_id)
        invoice = Invoice(new_id(), tranche.id, number, tranche.outstanding, self.currency, issued_on, by)
        self.invoices.append(invoice)
        self._publish(InvoiceIssued, invoice_id=invoice.id, number=number, tranche_id=tranche.id,
                      tranche_key=tranche.key, amount=invoice.amount, currency=self.currency, issued_on=issued_on)
        return invoice

    def invoiceable(self, tranche_id: str) -> PaymentTranche:
        """The tranche, if a payment request may be issued for it now (else the reason why not)."""
        tranche = self.tranche(tranche_id)
        self._expect_payable(tranche, "invoiced")
        if self.open_invoice(tranche_id) is not None:
            raise Conflict(f"Tranche {tranche.key!r} already has an open invoice "
                           f"{self.open_invoice(tranche_id).number}.")
        return tranche

    def record_payment(self, tranche_id: str, amount: Decimal, received_on: dt.date, reference: str,
                       by: str) -> Payment:
        """A payment received against a tranche: partial payments are fine, paying more than owed is not."""
        tranche = self.tranche(tranche_id)
        if amount <= 0 or amount != amount.quantize(FEN):
            raise Invalid("A payment is a positive amount in yuan and fen.",
                          errors=[field_error("/amount", "must be positive with at most two decimals")])
        if tranche.status == "settled" or amount > tranche.outstanding:
            raise Invalid(f"Overpayment: tranche {tranche.key!r} owes {tranche.outstanding}, not {amount}.",
                          errors=[field_error("/amount", f"exceeds the outstanding {tranche.outstanding}")],
                          outstanding=format(tranche.outstanding, "f"))
        self._expect_payable(tranche, "paid")
        invoice = self.open_invoice(tranche_id)
        payment = Payment(new_id(), tranche.id, invoice.id if invoice else None, amount, received_on, reference, by)
        self.payments.append(payment)
        tranche.paid += amount
        self._publish(PaymentReceived, payment_id=payment.id, tranche_id=tranche.id, tranche_key=tranche.key,
                      invoice_id=payment.invoice_id, amount=amount, currency=self.currency, received_on=received_on,
                      reference=reference, outstanding=tranche.outstanding)
        self._settle_if_done(tranche, received_on)
        return payment

    # ------------------------------------------------------------------ service credits

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

    # ------------------------------------------------------------------ amendment and termination

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
        planned = {spec.key: _tranche(spec, amount, order[spec.key], terms) for spec, amount in zip(specs, amounts)}
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
                and _same_obligation(t, planned[t.key])}
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

    # ------------------------------------------------------------------ projections

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

    # ------------------------------------------------------------------ internals

    def _publish(self, event_type: type[EventPayload], **fields) -> None:
        self.events.append(event_type(contract_id=self.contract_id, org=self.org, **fields))

    def _expect_active(self) -> None:
        if self.status == "terminated":
            raise Conflict("The contract was terminated; its schedule no longer changes.")

    def _expect_payable(self, tranche: PaymentTranche, action: str) -> None:
        if tranche.status in CLOSED:
            raise Conflict(f"Tranche {tranche.key!r} is {tranche.status}; it cannot be {action}.")
        if tranche.status == "settled":
            raise Conflict(f"Tranche {tranche.key!r} is settled; nothing is owed on it.")
        if not tranche.is_payable:
            raise Conflict(f"Tranche {tranche.key!r} is not due yet ({tranche.status}); it cannot be {action}.")

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

    def _is_locked(self, t: PaymentTranche) -> bool:
        return t.paid > 0 or t.status == "settled" or any(i.tranche_id == t.id for i in self.invoices)

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

    def _merge_milestones(self, terms: ContractTerms, on: dt.date) -> None:
        wanted = {m.key: m for m in _milestones(terms)}
        at = dt.datetime.combine(on, dt.time(), dt.timezone.utc)
        for m in self.milestones:
            if m.key in wanted:
                fresh = wanted.pop(m.key)
                m.label, m.planned_on, m.position = fresh.label, fresh.planned_on, fresh.position
            else:
                m.withdraw(at, f"not in contract version {terms.version}")
        self.milestones += list(wanted.values())

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


# ---------------------------------------------------------------------- service credits

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


# ---------------------------------------------------------------------- building from the terms

def tranche_amounts(specs: Sequence[TrancheTerms], total: Decimal, whole_contract: bool) -> list[Decimal]:
    """The tranches' amounts, adding up to `total` to the fen.

    The amounts written in the contract are used when they add up exactly (the signed document
    is what binds). Otherwise the total is split by the percentages, to the fen, with the
    largest-remainder method (`money.allocate`). For a whole contract the percentages must add
    up to 100; for the part of an amended contract still to schedule, they are the weights.
    """
    if not specs:
        if total != 0:
            raise Invalid(f"The contract has a total of {total} but no tranches.")
        return []
    written = [to_fen(s.amount) for s in specs]
    if sum(written, ZERO) == total and all(a >= 0 for a in written) and all(s.amount == a for s, a in
                                                                              zip(specs, written)):
        return written
    percents = [Decimal(s.percent) for s in specs]
    if whole_contract and sum(percents, Decimal(0)) not in (HUNDRED, Decimal(1)):
        raise Invalid(f"The tranches' percentages add up to {sum(percents)}, not 100, and their amounts "
                      f"add up to {sum(written)}, not {total}.")
    try:
        return allocate(total, percents)
    except ValueError as exc:
        raise Invalid(f"The tranches cannot share {total}: {exc}.") from None


def _tranche(spec: TrancheTerms, amount: Decimal, position: int, terms: ContractTerms) -> PaymentTranche:
    trigger = spec.trigger
    months = terms.warranty_months if trigger.kind == "after_tranche" and trigger.days is None else None
    if trigger.kind == "after_tranche" and trigger.days is None and months is None:
        raise Invalid(f"Tranche {spec.key!r} follows {trigger.tranche!r} but says neither after how many days "
                      "nor the warranty months.")
    if trigger.kind == "fixed_date" and trigger.date is None:
        raise Invalid(f"Tranche {spec.key!r} is due on a fixed date but has none.")
    if trigger.kind == "after_tranche" and not trigger.tranche:
        raise Invalid(f"Tranche {spec.key!r} follows another tranche but does not say which.")
    if trigger.kind == "milestone" and not trigger.milestone:
        raise Invalid(f"Tranche {spec.key!r} waits on a milestone but does not say which.")
    return PaymentTranche(
        id=new_id(), key=spec.key, label=spec.label, position=position, percent=Decimal(spec.percent),
        amount=amount, trigger=Trigger(trigger.kind, trigger.milestone, trigger.date, trigger.tranche, trigger.days,
                                       months),
        due_term=DueTerm(spec.due.days, spec.due.unit), is_retention=spec.is_retention, version=terms.version)


def _same_obligation(current: PaymentTranche, planned: PaymentTranche) -> bool:
    return (current.amount, current.trigger, current.due_term, current.is_retention) == (
        planned.amount, planned.trigger, planned.due_term, planned.is_retention)


def _milestones(terms: ContractTerms) -> list[Milestone]:
    """The contract's milestones; one a tranche waits on but the contract forgot to list is added."""
    milestones = [Milestone(new_id(), m.key, m.label, i, m.due_date) for i, m in enumerate(terms.milestones)]
    known = {m.key for m in milestones}
    for spec in terms.tranches:
        key = spec.trigger.milestone
        if spec.trigger.kind == "milestone" and key and key not in known:
            milestones.append(Milestone(new_id(), key, key, len(milestones)))
            known.add(key)
    return milestones
