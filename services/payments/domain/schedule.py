"""The payment schedule of one contract: the aggregate every payment rule goes through.

A `PaymentSchedule` holds the contract's tranches (分期付款), its milestones, the invoices issued,
the payments received and the service credits deducted. Every change goes through a method
here, which checks the rules and records the events to publish in `.events`.

Its parts live beside it, each a mixin named after what it does in the business:
`tranche_release` (triggered, due, overdue, settled), `late_fee_booking` (the statement and its
announcement), `service_credits` (credits, corrections, debits), `amendments` (re-baselining and
termination). The tranche itself and its life are in `tranches`, building from the contract's
terms in `terms`. `PaymentSchedule` stays the one aggregate root: callers use only its methods.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Sequence

from services.payments.domain.amendments import Amendments
from services.payments.domain.late_fee_booking import LateFeeBookkeeping
from services.payments.domain.late_fees import LateFeeRule, LateFeeTerms
from services.payments.domain.ledger import CreditNote, CreditWithdrawal, Invoice, Payment
from services.payments.domain.milestones import Milestone
from services.payments.domain.service_credits import ServiceCredits, notes_to_lower
from services.payments.domain.terms import milestones_from_terms, tranche_amounts, tranche_from_terms
from services.payments.domain.tranche_release import TrancheRelease
from services.payments.domain.tranches import (CLOSED, PAYABLE, LateFeeBooking, PaymentTranche, StatusChange,
                                               TrancheStatus, Trigger)
from shared.errors import Conflict, Invalid, NotFound, field_error
from shared.events.base import EventPayload
from shared.events.contracts import ContractTerms
from shared.events.payments import (InvoiceIssued, MilestoneAccepted, MilestoneRejected, MilestoneSubmitted,
                                    PaymentReceived, PaymentScheduleCreated)
from shared.ids import new_id
from shared.money import FEN, ZERO, to_fen

__all__ = ["PaymentSchedule", "PaymentTranche", "Trigger", "StatusChange", "LateFeeBooking", "TrancheStatus",
           "PAYABLE", "CLOSED", "tranche_amounts", "notes_to_lower"]


@dataclass
class PaymentSchedule(TrancheRelease, LateFeeBookkeeping, ServiceCredits, Amendments):
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
        schedule.tranches = [tranche_from_terms(spec, amount, i, terms) for i, (spec, amount)
                             in enumerate(zip(terms.tranches, amounts))]
        schedule.milestones = milestones_from_terms(terms)
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

