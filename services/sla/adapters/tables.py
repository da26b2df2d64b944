"""Tables of the sla service: its own database, shared with no other service.

Every business table carries `org`; every query filters by the caller's org.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Column, Index, Integer, MetaData, Numeric, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.service import with_bookkeeping
from shared.tables import BigId, instant_field

metadata = with_bookkeeping(MetaData())


class Table(SQLModel, registry=registry(metadata=metadata)):
    """Base of every sla table model (a registry of its own: services never share tables)."""



class DefinitionRow(Table, table=True):
    """The SLA a contract promises, in its latest version (metrics in `sla_metrics`)."""
    __tablename__ = "sla_definitions"
    __table_args__ = (Index("ix_sla_definitions_org_vendor_party", "org", "vendor_party", "contract_id"),)
    contract_id: str = Field(primary_key=True, max_length=64)
    org: str = Field(index=True, max_length=100)
    # the vendor party's 统一社会信用代码: a counterparty's token sees only its own company's SLAs
    vendor_party: str | None = Field(default=None, max_length=64)
    contract_version: int
    number: str = Field(max_length=100)
    title: str = Field(max_length=500)
    currency: str = Field(max_length=3)
    monthly_fee: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 2), nullable=True))
    effective_date: dt.date
    end_date: dt.date
    service_hours: dict = Field(sa_column=Column(JSON, nullable=False))
    credit_cap_share: Decimal | None = Field(default=None, sa_column=Column(Numeric(9, 6), nullable=True))
    created_at: dt.datetime = instant_field()
    updated_at: dt.datetime = instant_field()


class MetricRow(Table, table=True):
    """One promised level; `terms` is the clause's SlaMetric as written, `contract_version` where it came from."""
    __tablename__ = "sla_metrics"
    __table_args__ = (UniqueConstraint("contract_id", "key", name="uq_sla_metric_key"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=64)
    key: str = Field(max_length=100)
    kind: str = Field(max_length=40)
    priority: str | None = Field(default=None, max_length=2)
    clause_key: str = Field(max_length=200)
    contract_version: int
    position: int
    terms: dict = Field(sa_column=Column(JSON, nullable=False))


class TicketEventRow(Table, table=True):
    """A ticket's life as reported, each step once (by the source's own id)."""
    __tablename__ = "sla_ticket_events"
    __table_args__ = (UniqueConstraint("org", "contract_id", "source_id", name="uq_sla_ticket_event_source"),
                      Index("ix_sla_ticket_events_ticket", "contract_id", "ticket_id"))
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=64)
    ticket_id: str = Field(max_length=200)
    source_id: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    at: dt.datetime = instant_field()
    priority: str | None = Field(default=None, max_length=2)
    received_at: dt.datetime = instant_field()


class TicketClockRow(Table, table=True):
    """Where one ticket stands against one timer (recomputed whenever the ticket's events change)."""
    __tablename__ = "sla_ticket_clocks"
    __table_args__ = (UniqueConstraint("contract_id", "ticket_id", "metric_key", name="uq_sla_ticket_clock"),
                      Index("ix_sla_ticket_clocks_window", "contract_id", "metric_key", "period"))
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=64)
    ticket_id: str = Field(max_length=200)
    metric_key: str = Field(max_length=100)
    priority: str | None = Field(default=None, max_length=2)
    period: str = Field(max_length=7)
    state: str = Field(max_length=20)
    cycle: int = 1
    opened_at: dt.datetime = instant_field()
    deadline: dt.datetime | None = instant_field(nullable=True)
    at_risk_at: dt.datetime | None = instant_field(nullable=True)
    breached_at: dt.datetime | None = instant_field(nullable=True)
    running_since: dt.datetime | None = instant_field(nullable=True)
    elapsed_seconds: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(18, 3), nullable=False))
    miss: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 6), nullable=True))
    updated_at: dt.datetime = instant_field()


class SampleRow(Table, table=True):
    """One measurement for a window metric, once (by the source's own id)."""
    __tablename__ = "sla_samples"
    __table_args__ = (UniqueConstraint("org", "contract_id", "source_id", name="uq_sla_sample_source"),
                      Index("ix_sla_samples_window", "contract_id", "kind", "start"))
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=64)
    source_id: str = Field(max_length=200)
    kind: str = Field(max_length=30)
    metric_key: str | None = Field(default=None, max_length=100)
    start: dt.datetime = instant_field()            # interval start, or the moment of a score, contact or report
    end: dt.datetime | None = instant_field(nullable=True)
    state: str | None = Field(default=None, max_length=20)
    offered: int = 0
    answered_within_threshold: int = 0
    abandoned: int = 0
    responses: int = 0
    score_sum: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(18, 4), nullable=False))
    contacts: int = 0
    resolved_first_contact: int = 0
    report_period: str | None = Field(default=None, max_length=7)   # the month a delivered report covers
    received_at: dt.datetime = instant_field()


class WindowResultRow(Table, table=True):
    """Where a metric stands in one month; updated as input arrives, final when the month closes."""
    __tablename__ = "sla_window_results"
    __table_args__ = (UniqueConstraint("contract_id", "metric_key", "period", name="uq_sla_window_result"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=64)
    metric_key: str = Field(max_length=100)
    period: str = Field(max_length=7)
    status: str = Field(max_length=20)
    actual: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 6), nullable=True))
    met: bool | None = None
    items: int = 0
    breaches: int = 0
    miss: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(18, 6), nullable=False))
    closed: bool = False
    updated_at: dt.datetime = instant_field()


class PeriodRow(Table, table=True):
    """A contract's month: open until its end has passed and it has been closed (once, by one replica).

    `revision` counts the `sla.period_closed` announcements: 1 at the close, one more for each
    correction late input made; `credit_id` / `credit_amount` are the latest assessment."""
    __tablename__ = "sla_periods"
    __table_args__ = (UniqueConstraint("contract_id", "period", name="uq_sla_period"),
                      Index("ix_sla_periods_due", "status", "ends_at"))
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=64)
    period: str = Field(max_length=7)
    starts_at: dt.datetime = instant_field()
    ends_at: dt.datetime = instant_field()
    status: str = Field(default="open", max_length=20)
    closed_at: dt.datetime | None = instant_field(nullable=True)
    credit_id: str | None = Field(default=None, max_length=32)
    credit_amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 2), nullable=True))
    credit_detail: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    revision: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    announced: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))   # compliance last announced


class TimerRow(Table, table=True):
    """An instant at which something must be said even if no input arrives (a deadline, a threshold).

    Fired once: the job claims a row by moving it from pending to fired with a conditional UPDATE.
    """
    __tablename__ = "sla_timers"
    __table_args__ = (UniqueConstraint("contract_id", "metric_key", "subject", "kind", "cycle", name="uq_sla_timer"),
                      Index("ix_sla_timers_due", "status", "due_at"))
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=64)
    metric_key: str = Field(max_length=100)
    subject: str = Field(max_length=200)       # the ticket id, or the period for a window deadline
    kind: str = Field(max_length=20)           # at_risk | breach
    cycle: int = 1
    period: str = Field(max_length=7)
    due_at: dt.datetime = instant_field()
    status: str = Field(default="pending", max_length=20)   # pending | fired | retracted
    fired_at: dt.datetime | None = instant_field(nullable=True)
    details: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class PublishedEventRow(Table, table=True):
    """Every SLA event published, numbered, so a live stream can resume from `Last-Event-ID`."""
    __tablename__ = "sla_published_events"
    __table_args__ = (Index("ix_sla_published_org_seq", "org", "seq"),)
    seq: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=64)
    event_id: str = Field(max_length=64)
    event_type: str = Field(max_length=100)
    body: str = Field(sa_column=Column(Text, nullable=False))   # the structured CloudEvent, JSON
    created_at: dt.datetime = instant_field()


class FeedKeyRow(Table, table=True):
    """A key an organisation's feed signs its `sla.ingest` records with. No secret is stored: the secret is
    derived from the service's feed-key master secret and the key id (`domain.feed_keys`)."""
    __tablename__ = "sla_feed_keys"
    key_id: str = Field(primary_key=True, max_length=40)
    org: str = Field(index=True, max_length=100)
    name: str = Field(max_length=100)
    created_by: str = Field(max_length=200)
    created_at: dt.datetime = instant_field()
    revoked_at: dt.datetime | None = instant_field(nullable=True)
