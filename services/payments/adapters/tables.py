"""Tables of the payments service: its own database, shared with no other service.

Every business table carries `org`; every query a caller can reach filters by the caller's org.
Money is NUMERIC(18, 2) read back as Decimal; dates are calendar dates in Asia/Shanghai.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Column, Index, MetaData, Numeric, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.service import with_bookkeeping
from shared.tables import instant_field

metadata = with_bookkeeping(MetaData())


class Table(SQLModel, registry=registry(metadata=metadata)):
    """Base of every payments table model (a registry of its own: services never share tables)."""


def _money(nullable: bool = False):
    return Field(default=None if nullable else Decimal("0.00"), sa_column=Column(Numeric(18, 2), nullable=nullable))



class ScheduleRow(Table, table=True):
    """One contract's payment schedule; `terms` is the latest ContractTerms as received."""
    __tablename__ = "payment_schedules"
    __table_args__ = (Index("ix_payment_schedules_org_vendor_party", "org", "vendor_party", "contract_id"),)
    contract_id: str = Field(primary_key=True, max_length=64)
    org: str = Field(index=True, max_length=100)
    # the vendor party's 统一社会信用代码 from the terms: a counterparty's token sees only its own company's
    vendor_party: str | None = Field(default=None, max_length=64)
    number: str = Field(max_length=100)
    title: str = Field(max_length=500)
    currency: str = Field(max_length=3)
    total_amount: Decimal = _money()
    version: int
    signed_on: dt.date
    status: str = Field(max_length=20)
    terminated_on: dt.date | None = None
    charges_late_fees: bool = False
    late_fee_rules: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [{from, daily_rate, cap}]
    terms: dict = Field(sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = instant_field()
    updated_at: dt.datetime = instant_field()


class TrancheRow(Table, table=True):
    """One instalment; superseded ones stay, with the contract version that replaced them."""
    __tablename__ = "payment_tranches"
    __table_args__ = (Index("ix_payment_tranches_status_due", "status", "due_date"),
                      Index("ix_payment_tranches_status_triggered", "status", "triggered_on"))
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=64)
    key: str = Field(max_length=100)
    label: str = Field(max_length=300)
    position: int
    percent: Decimal = Field(sa_column=Column(Numeric(9, 4), nullable=False))
    amount: Decimal = _money()
    trigger_kind: str = Field(max_length=20)
    trigger_milestone: str | None = Field(default=None, max_length=100)
    trigger_on: dt.date | None = None
    trigger_after: str | None = Field(default=None, max_length=100)
    trigger_days: int | None = None
    trigger_months: int | None = None
    due_days: int
    due_unit: str = Field(max_length=20)
    is_retention: bool = False
    version: int
    status: str = Field(max_length=20)
    triggered_on: dt.date | None = None
    due_date: dt.date | None = None
    settled_on: dt.date | None = None
    closed_on: dt.date | None = None
    superseded_in: int | None = None
    paid: Decimal = _money()
    credited: Decimal = _money()
    late_fees_through: dt.date | None = None
    late_fees_from: dt.date | None = None


class MilestoneRow(Table, table=True):
    __tablename__ = "payment_milestones"
    __table_args__ = (UniqueConstraint("contract_id", "key", name="uq_payment_milestone_key"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=64)
    key: str = Field(max_length=100)
    label: str = Field(max_length=300)
    position: int
    planned_on: dt.date | None = None
    status: str = Field(max_length=20)
    reached_on: dt.date | None = None
    evidence: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    submitted_by: str | None = Field(default=None, max_length=200)
    accepted_on: dt.date | None = None
    decided_by: str | None = Field(default=None, max_length=200)
    comment: str | None = Field(default=None, max_length=4000)


class MilestoneReviewRow(Table, table=True):
    """A milestone's acceptance history, one row per step."""
    __tablename__ = "milestone_reviews"
    id: str = Field(primary_key=True, max_length=48)   # "<milestone id>-<step number>"
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=64)
    milestone_id: str = Field(index=True, max_length=32)
    step: int
    action: str = Field(max_length=20)
    actor: str = Field(max_length=200)
    at: dt.datetime = instant_field()
    evidence: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    comment: str | None = Field(default=None, max_length=4000)


class InvoiceRow(Table, table=True):
    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("org", "number", name="uq_invoice_number"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=64)
    tranche_id: str = Field(max_length=32)
    number: str = Field(max_length=40)
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    issued_on: dt.date
    issued_by: str = Field(max_length=200)
    status: str = Field(max_length=20)
    created_at: dt.datetime = instant_field()


class InvoiceCounterRow(Table, table=True):
    """The last invoice number used by an organisation in a year (gap-free numbering)."""
    __tablename__ = "invoice_counters"
    org: str = Field(primary_key=True, max_length=100)
    year: int = Field(primary_key=True)
    last: int = 0


class PaymentRow(Table, table=True):
    __tablename__ = "payments"
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=64)
    tranche_id: str = Field(max_length=32)
    invoice_id: str | None = Field(default=None, max_length=32)
    amount: Decimal = _money()
    received_on: dt.date
    reference: str = Field(max_length=200)
    recorded_by: str = Field(max_length=200)
    recorded_at: dt.datetime = instant_field()


class CreditNoteRow(Table, table=True):
    """A service credit from the SLA service (kept even before the contract's schedule exists)."""
    __tablename__ = "credit_notes"
    __table_args__ = (UniqueConstraint("org", "credit_id", name="uq_credit_note_credit_id"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=64)
    credit_id: str = Field(max_length=200)
    period: str = Field(max_length=20)
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    metric_keys: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    received_on: dt.date
    withdrawn: Decimal = _money()    # taken back by corrections that lowered the month's credit


class CreditApplicationRow(Table, table=True):
    __tablename__ = "credit_applications"
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=64)
    credit_note_id: str = Field(max_length=32)
    tranche_id: str = Field(max_length=32)
    amount: Decimal = _money()
    applied_on: dt.date
    reversed_on: dt.date | None = None


class CreditWithdrawalRow(Table, table=True):
    """A correction that lowered a month's credit: kept under its credit id so it is applied once."""
    __tablename__ = "credit_withdrawals"
    __table_args__ = (UniqueConstraint("org", "credit_id", name="uq_credit_withdrawal_credit_id"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=64)
    credit_id: str = Field(max_length=200)
    replaces: str | None = Field(default=None, max_length=200)
    period: str = Field(max_length=20)
    amount: Decimal = _money()
    withdrawn_on: dt.date
    from_carried_forward: Decimal = _money()
    released: Decimal = _money()
    debited: Decimal = _money()
    owed: Decimal = _money()


class CalendarFeedRow(Table, table=True):
    """A user's iCalendar subscription: only a hash of its secret URL token is kept."""
    __tablename__ = "calendar_feeds"
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    owner: str = Field(index=True, max_length=200)
    name: str = Field(max_length=200)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: dt.datetime = instant_field()
    revoked_at: dt.datetime | None = instant_field(nullable=True)
