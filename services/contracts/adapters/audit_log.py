"""The audit log in the database: appending hash-chained entries and reading them back.

The chain itself (hashing, verification) is domain/audit.py; this module only stores it.
An append reads the stream head under a row lock (PostgreSQL `FOR UPDATE`; SQLite write
transactions are already serialised by BEGIN IMMEDIATE), and (stream, seq) is unique, so two
writers can never fork a stream: the loser's transaction fails and rolls back with its change.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.contracts.adapters.tables import AuditEntryRow, AuditHeadRow
from services.contracts.domain.audit import AuditEntry, next_entry
from shared.uow import utcnow


def contract_stream(contract_id: str) -> str:
    return f"contract:{contract_id}"


def record(session: Session, *, org: str, contract_id: str, actor: str, action: str,
           before: dict | None, after: dict | None, detail: dict | None = None, at: dt.datetime | None = None) -> None:
    """Append one entry to the contract's stream, in the caller's transaction."""
    append(session, stream=contract_stream(contract_id), org=org, actor=actor, action=action,
           before=before, after=after, detail=detail, at=at)


def append(session: Session, *, stream: str, org: str, actor: str, action: str,
           before: Any, after: Any, detail: dict | None = None, at: dt.datetime | None = None) -> AuditEntry:
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.stream == stream)
                           .with_for_update()).scalar_one_or_none()
    previous = _entry(session.execute(select(AuditEntryRow).where(
        AuditEntryRow.stream == stream, AuditEntryRow.seq == head.seq)).scalar_one()) if head else None
    entry = next_entry(previous, stream=stream, org=org, actor=actor, action=action, at=at or utcnow(),
                       before=before, after=after, detail=detail)
    session.add(AuditEntryRow(stream=entry.stream, seq=entry.seq, org=entry.org, actor=entry.actor,
                              action=entry.action, at=entry.at, before_hash=entry.before_hash,
                              after_hash=entry.after_hash, prev_hash=entry.prev_hash,
                              entry_hash=entry.entry_hash, detail=entry.detail))
    if head is None:
        session.add(AuditHeadRow(stream=stream, seq=entry.seq, entry_hash=entry.entry_hash))
    else:
        head.seq, head.entry_hash = entry.seq, entry.entry_hash
    session.flush()
    return entry


def stream_entries(session: Session, stream: str) -> list[AuditEntry]:
    rows = session.execute(select(AuditEntryRow).where(AuditEntryRow.stream == stream)
                           .order_by(AuditEntryRow.seq)).scalars()
    return [_entry(row) for row in rows]


def head(session: Session, stream: str) -> tuple[int, str] | None:
    row = session.get(AuditHeadRow, stream)
    return (row.seq, row.entry_hash) if row else None


def all_entries(session: Session) -> tuple[list[AuditEntry], dict[str, tuple[int, str]]]:
    """Every entry and every stream head (for `qiyue audit verify`)."""
    entries = [_entry(row) for row in session.execute(select(AuditEntryRow)).scalars()]
    heads = {h.stream: (h.seq, h.entry_hash) for h in session.execute(select(AuditHeadRow)).scalars()}
    return entries, heads


def _entry(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry(stream=row.stream, seq=row.seq, org=row.org, actor=row.actor, action=row.action,
                      at=row.at, before_hash=row.before_hash, after_hash=row.after_hash,
                      prev_hash=row.prev_hash, detail=row.detail or {}, entry_hash=row.entry_hash)


class AuditLog:
    """The audit log on a unit of work: what use cases append to, in their own transaction,
    stamped with the app's clock (the unit of work's)."""

    def __init__(self, session: Session, clock: Callable[[], dt.datetime] = utcnow):
        self.session, self.clock = session, clock

    def record(self, *, org: str, contract_id: str, actor: str, action: str, before: dict | None,
               after: dict | None, detail: dict | None = None) -> None:
        record(self.session, org=org, contract_id=contract_id, actor=actor, action=action, before=before,
               after=after, detail=detail, at=self.clock())

    def append(self, *, stream: str, org: str, actor: str, action: str, before: Any, after: Any,
               detail: dict | None = None) -> AuditEntry:
        return append(self.session, stream=stream, org=org, actor=actor, action=action, before=before,
                      after=after, detail=detail, at=self.clock())

    def stream(self, stream: str) -> tuple[list[AuditEntry], tuple[int, str] | None]:
        """A stream's entries, oldest first, and its head."""
        return stream_entries(self.session, stream), head(self.session, stream)
