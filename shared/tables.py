"""The bookkeeping tables every service has in its own database.

They are added to each service's own MetaData (services share no tables), so each service's
alembic history creates its copy.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table,
                        Text, UniqueConstraint)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator):
    """An instant, always timezone-aware UTC in Python, whatever the database keeps.

    SQLite has no time zones: it stores the UTC wall time and hands back naive values, which
    this type makes aware again. Naive input is refused rather than guessed.
    """
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware instant")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


BigId = BigInteger().with_variant(Integer, "sqlite")


def bookkeeping_tables(metadata: MetaData) -> dict[str, Table]:
    outbox = Table(
        "outbox", metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("headers", JSON, nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("published_at", UtcDateTime(), nullable=True),
        # A row the broker refuses for good (too large, invalid) is parked: left out of publishing
        # until someone fixes the cause and retries it, so it never blocks the rows behind it.
        Column("parked_at", UtcDateTime(), nullable=True),
        Column("park_reason", Text, nullable=True),
        Index("ix_outbox_unpublished", "published_at", "id"),
        Index("ix_outbox_created", "created_at"),
    )
    inbox = Table(
        "inbox", metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", UtcDateTime(), nullable=False),
    )
    leases = Table(
        "leases", metadata,
        Column("name", String(100), primary_key=True),
        Column("holder", String(100), nullable=False),
        Column("expires_at", UtcDateTime(), nullable=False),
    )
    idempotency = Table(
        "idempotency_keys", metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("org", String(100), nullable=False),
        Column("sub", String(200), nullable=False, server_default=""),   # a key is its user's own
        Column("key", String(200), nullable=False),
        Column("scope", String(300), nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("response", JSON, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        UniqueConstraint("org", "sub", "scope", "key", name="uq_idempotency_key_per_user"),
    )
    return {"outbox": outbox, "inbox": inbox, "leases": leases, "idempotency_keys": idempotency}


# --- fields of the services' SQLModel tables ---------------------------------------------------

def instant_field(nullable: bool = False, index: bool = False):
    """An aware UTC instant column (see UtcDateTime)."""
    from sqlmodel import Field
    return Field(default=None, sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def json_field(nullable: bool = False, default=dict):
    """A JSON column holding a dict (or what `default` makes)."""
    from sqlmodel import Field
    return Field(default_factory=default, sa_column=Column(JSON, nullable=nullable))
