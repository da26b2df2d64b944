"""Events published by the payments service on `payments.events`.

Amounts are `Money` (decimal strings, two places, in the contract's currency). Dates are
calendar dates in Asia/Shanghai. Every event is keyed by the contract id, so the events of one
contract arrive in the order they happened.
"""
from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from shared.events.base import EventPayload, Money

TOPIC = "payments.events"


class _PaymentsEvent(EventPayload):
    topic = TOPIC
    contract_id: str
    org: str


class TrancheSummary(BaseModel):
    """One instalment of a schedule as it stands when the event is published."""
    model_config = ConfigDict(frozen=True)
    tranche_id: str
    key: str
    label: str
    amount: Money
    trigger: str                      # on_signing | milestone | fixed_date | after_tranche
    status: str
    due_date: dt.date | None = None
    is_retention: bool = False


# --- schedule ----------------------------------------------------------------------------------

class PaymentScheduleCreated(_PaymentsEvent):
    """A signed contract's payment schedule: one tranche per instalment, adding up to the total."""
    event_type = "payment_schedule.created"
    version: int
    currency: str
    total_amount: Money
    tranches: list[TrancheSummary]


class PaymentScheduleRebaselined(_PaymentsEvent):
    """An amendment replaced the unpaid, uninvoiced tranches; the replaced ones stay in history."""
    event_type = "payment_schedule.rebaselined"
    version: int
    previous_version: int
    total_amount: Money
    kept: list[str]                   # tranche keys left as they were (paid, invoiced or settled)
    superseded: list[str]             # ids of the tranches replaced
    tranches: list[TrancheSummary]    # the schedule in force now


# --- milestones --------------------------------------------------------------------------------

class MilestoneSubmitted(_PaymentsEvent):
    """The vendor's PM asks the client to accept a milestone, with evidence."""
    event_type = "milestone.submitted"
    milestone_key: str
    label: str
    evidence: list[str]
    submitted_by: str
    note: str | None = None


class MilestoneAccepted(_PaymentsEvent):
    event_type = "milestone.accepted"
    milestone_key: str
    label: str
    accepted_on: dt.date
    accepted_by: str
    comment: str | None = None
    tranche_keys: list[str]           # the tranches this acceptance makes payable


class MilestoneRejected(_PaymentsEvent):
    event_type = "milestone.rejected"
    milestone_key: str
    label: str
    rejected_by: str
    comment: str


# --- money owed --------------------------------------------------------------------------------

class PaymentDue(_PaymentsEvent):
    """A tranche's trigger happened: it is payable by `due_date`."""
    event_type = "payment.due"
    tranche_id: str
    tranche_key: str
    label: str
    amount: Money                     # what is still owed on it
    currency: str
    triggered_on: dt.date
    due_date: dt.date


class RetentionReleased(_PaymentsEvent):
    """The retained quality-guarantee share (质保金) became payable after the warranty period."""
    event_type = "retention.released"
    tranche_id: str
    tranche_key: str
    amount: Money
    currency: str
    released_on: dt.date
    due_date: dt.date


class PaymentOverdue(_PaymentsEvent):
    event_type = "payment.overdue"
    tranche_id: str
    tranche_key: str
    amount: Money                     # outstanding on the first overdue day
    currency: str
    due_date: dt.date
    overdue_since: dt.date


class LateFeeAccrued(_PaymentsEvent):
    """Late fees of one tranche for the days `from_day`..`through_day` (see the per-day statement)."""
    event_type = "late_fee.accrued"
    tranche_id: str
    tranche_key: str
    from_day: dt.date
    through_day: dt.date
    days: int
    amount: Money
    contract_total: Money             # all late fees of the contract so far
    capped: bool                      # the contract's cap cut at least one of these days
    currency: str


# --- invoices, payments, credits ---------------------------------------------------------------

class InvoiceIssued(_PaymentsEvent):
    event_type = "invoice.issued"
    invoice_id: str
    number: str
    tranche_id: str
    tranche_key: str
    amount: Money
    currency: str
    issued_on: dt.date


class PaymentReceived(_PaymentsEvent):
    event_type = "payment.received"
    payment_id: str
    tranche_id: str
    tranche_key: str
    invoice_id: str | None = None
    amount: Money
    currency: str
    received_on: dt.date
    reference: str
    outstanding: Money                # still owed on the tranche after this payment


class CreditApplied(_PaymentsEvent):
    """Part of a service credit deducted from a tranche; `remaining` is carried forward."""
    event_type = "credit.applied"
    credit_id: str                    # the SLA service's id of the credit
    credit_note_id: str
    tranche_id: str
    tranche_key: str
    amount: Money
    remaining: Money
    currency: str
    applied_on: dt.date


class CreditRelease(BaseModel):
    """Credit given back by one unpaid, uninvoiced tranche: it owes that much more."""
    model_config = ConfigDict(frozen=True)
    tranche_id: str
    tranche_key: str
    amount: Money
    outstanding: Money                # owed on the tranche after the release
    status: str


class CreditWithdrawn(_PaymentsEvent):
    """A correction lowered a month's service credit: `amount` is taken back.

    First from what was still carried forward (`from_carried_forward`), then from the tranches
    nobody has paid or invoiced (`released`: they owe more again), the month's newest credit
    notes first. Credit already deducted from a paid or invoiced tranche stays there: as much
    is added to the next unpaid, uninvoiced tranche (`debited`, see `credit.debited`), or, with
    no such tranche, is `owed` by the client on the schedule.
    """
    event_type = "credit.withdrawn"
    credit_id: str                    # the correction's id
    replaces: str | None = None       # the credit id it corrects
    period: str
    amount: Money
    from_carried_forward: Money
    released: list[CreditRelease]
    debited: Money
    owed: Money
    currency: str
    withdrawn_on: dt.date


class CreditDebited(_PaymentsEvent):
    """Credit taken back that had gone to a paid or invoiced tranche, added to this tranche instead."""
    event_type = "credit.debited"
    credit_id: str                    # the SLA service's id of the credit note it is taken from
    credit_note_id: str
    tranche_id: str
    tranche_key: str
    amount: Money
    outstanding: Money                # owed on the tranche with the debit
    currency: str
    debited_on: dt.date
