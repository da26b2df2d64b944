"""Tables of the notifications service: its own database, shared with no other service.

Every business table carries `org`; every query filters by the caller's org.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Column, Index, MetaData, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.service import with_bookkeeping
from shared.tables import BigId, instant_field

metadata = with_bookkeeping(MetaData())


class Table(SQLModel, registry=registry(metadata=metadata)):
    """Base of every notifications table model (a registry of its own: services never share tables)."""



class SubscriptionRow(Table, table=True):
    __tablename__ = "subscriptions"
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(index=True, max_length=100)
    event_types: list = Field(sa_column=Column(JSON, nullable=False))
    contract_ids: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    severities: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    recipient_kind: str = Field(max_length=10)
    recipient: str = Field(max_length=320)
    language: str = Field(max_length=5)
    digest: bool = False
    digest_at: str = Field(default="09:00", max_length=5)
    quiet_start: str | None = Field(default=None, max_length=5)
    quiet_end: str | None = Field(default=None, max_length=5)
    timezone: str = Field(max_length=64)
    active: bool = True
    created_by: str = Field(max_length=200)
    created_at: dt.datetime = instant_field()
    updated_at: dt.datetime = instant_field()


class EndpointRow(Table, table=True):
    """A webhook endpoint. The secret is kept (we sign with it) but shown only when created."""
    __tablename__ = "webhook_endpoints"
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(index=True, max_length=100)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    secret: str = Field(max_length=100)
    status: str = Field(default="active", max_length=10)          # active | disabled
    failing_since: dt.datetime | None = instant_field(nullable=True)
    failed_deliveries: int = 0
    disabled_at: dt.datetime | None = instant_field(nullable=True)
    disabled_reason: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=200)
    created_at: dt.datetime = instant_field()


class DeliveryRow(Table, table=True):
    """One event to one recipient (at most one per event and subscription), with its state.

    pending (waits for `next_attempt_at`) -> sending (claimed until `next_attempt_at`) ->
    delivered | pending again (retry) | failed (for good; dead-lettered).
    """
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("event_id", "subscription_id", name="uq_delivery_event_subscription"),
                      Index("ix_deliveries_due", "status", "next_attempt_at"),
                      Index("ix_deliveries_org_created", "org", "created_at"))
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    event_id: str = Field(max_length=64)
    subscription_id: str = Field(max_length=32)
    event_type: str = Field(max_length=200)
    topic: str = Field(max_length=200)                               # where the event came from
    contract_id: str = Field(max_length=64)
    event: dict = Field(sa_column=Column(JSON, nullable=False))     # the CloudEvent, structured form
    channel: str = Field(max_length=10)                              # inbox | email | webhook
    recipient: str = Field(max_length=320)
    language: str = Field(max_length=5)
    timezone: str = Field(max_length=64)
    urgent: bool = False
    digest: bool = False
    status: str = Field(max_length=10)
    attempts: int = 0                                                # all attempts, ever
    round_attempts: int = 0                                          # since `retry_since` (redeliver starts over)
    next_attempt_at: dt.datetime | None = instant_field(nullable=True)
    retry_since: dt.datetime | None = instant_field(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: dt.datetime = instant_field()
    delivered_at: dt.datetime | None = instant_field(nullable=True)
    failed_at: dt.datetime | None = instant_field(nullable=True)


class AttemptRow(Table, table=True):
    __tablename__ = "delivery_attempts"
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    delivery_id: str = Field(index=True, max_length=32)
    org: str = Field(max_length=100)
    number: int
    at: dt.datetime = instant_field()
    outcome: str = Field(max_length=10)                 # delivered | failed | refused
    status_code: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    duration_ms: int | None = None


class InboxItemRow(Table, table=True):
    """An in-app notification for one user or for everyone holding a role."""
    __tablename__ = "inbox_items"
    __table_args__ = (Index("ix_inbox_items_recipient", "org", "recipient_kind", "recipient", "created_at"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    recipient_kind: str = Field(max_length=10)          # user | role
    recipient: str = Field(max_length=200)
    delivery_id: str | None = Field(default=None, max_length=32, unique=True)
    event_id: str = Field(max_length=64)
    event_type: str = Field(max_length=200)
    contract_id: str | None = Field(default=None, max_length=64)
    subject: str = Field(max_length=500)
    body: str = Field(sa_column=Column(Text, nullable=False))
    link: str | None = Field(default=None, max_length=2000)
    created_at: dt.datetime = instant_field()


class InboxReadRow(Table, table=True):
    """Who has read which inbox item (a role's item is read by each of its holders separately)."""
    __tablename__ = "inbox_reads"
    item_id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(primary_key=True, max_length=200)
    read_at: dt.datetime = instant_field()


class KnownContractRow(Table, table=True):
    """Titles of contracts, learnt from the events that state them (payment and SLA events do not)."""
    __tablename__ = "known_contracts"
    org: str = Field(primary_key=True, max_length=100)
    contract_id: str = Field(primary_key=True, max_length=64)
    title: str = Field(max_length=500)
    number: str | None = Field(default=None, max_length=100)
    currency: str | None = Field(default=None, max_length=3)
    updated_at: dt.datetime = instant_field()
