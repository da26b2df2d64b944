"""Contracts, their versions and an organisation's clause versions in the database.

Contract rows are read and written as rows (the lifecycle and drafting use cases change a few
columns each); versions are only ever added. Search runs on columns copied from the current
version onto the contract row, lower-cased in Python so SQLite and PostgreSQL compare the same.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from services.contracts.adapters.tables import ClauseVersionRow, ContractRow, ContractVersionRow


# ---------------------------------------------------------------------- contracts

def add_contract(session: Session, row: ContractRow, first: ContractVersionRow) -> None:
    session.add(row)
    session.add(first)
    session.flush()


def add_version(session: Session, version: ContractVersionRow) -> None:
    session.add(version)
    session.flush()


def number_taken(session: Session, org: str, number: str) -> bool:
    return session.scalar(select(ContractRow.id).where(ContractRow.org == org, ContractRow.number == number)) \
        is not None


def versions(session: Session, contract_id: str) -> list[ContractVersionRow]:
    return list(session.scalars(select(ContractVersionRow).where(ContractVersionRow.contract_id == contract_id)
                                .order_by(ContractVersionRow.version)))


@dataclass(frozen=True)
class ContractFilter:
    """What `GET /v1/contracts` narrows by; None = any."""
    statuses: tuple[str, ...] = ()
    kind: str | None = None
    language: str | None = None
    counterparty: str | None = None       # part of either party's name
    currency: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    expiring_before: dt.date | None = None
    text: str | None = None               # part of the title, number or a party's name


def search(session: Session, org: str, where: ContractFilter, after: tuple[dt.datetime, str] | None,
           limit: int) -> list[ContractRow]:
    """Newest first; `after` is the (created_at, id) of the last row of the previous page."""
    c = ContractRow
    query = select(c).where(c.org == org)
    if where.statuses:
        query = query.where(c.status.in_(where.statuses))
    for column, value in ((c.kind, where.kind), (c.language, where.language), (c.currency, where.currency)):
        if value is not None:
            query = query.where(column == value)
    if where.counterparty:
        query = query.where(c.counterparty_text.contains(where.counterparty.lower(), autoescape=True))
    if where.text:
        query = query.where(c.search_text.contains(where.text.lower(), autoescape=True))
    if where.amount_min is not None:
        query = query.where(c.total_amount >= where.amount_min)
    if where.amount_max is not None:
        query = query.where(c.total_amount <= where.amount_max)
    if where.expiring_before is not None:
        query = query.where(c.end_date < where.expiring_before)
    if after is not None:
        created, last_id = after
        query = query.where(or_(c.created_at < created, and_(c.created_at == created, c.id < last_id)))
    return list(session.scalars(query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)))


# ---------------------------------------------------------------------- clause versions

def clause_rows(session: Session, org: str, key: str | None = None) -> list[ClauseVersionRow]:
    query = select(ClauseVersionRow).where(ClauseVersionRow.org == org)
    if key is not None:
        query = query.where(ClauseVersionRow.key == key)
    return list(session.scalars(query.order_by(ClauseVersionRow.created_at, ClauseVersionRow.id)))


def clause_row(session: Session, org: str, key: str, version: str, lock: bool = False) -> ClauseVersionRow | None:
    query = select(ClauseVersionRow).where(ClauseVersionRow.org == org, ClauseVersionRow.key == key,
                                           ClauseVersionRow.version == version)
    return session.scalar(query.with_for_update() if lock else query)


def clause_fingerprint(session: Session, org: str) -> tuple[int, str] | None:
    """Changes whenever the organisation's clause rows change (None: it has none)."""
    count, newest = session.execute(select(func.count(), func.max(ClauseVersionRow.updated_at))
                                    .where(ClauseVersionRow.org == org)).one()
    return (count, str(newest)) if count else None


def add_clause_row(session: Session, row: ClauseVersionRow) -> None:
    session.add(row)
    session.flush()


# ---------------------------------------------------------------------- an organisation's policies

def policy(session: Session, row_type: type, org: str) -> dict | None:
    """The stored policy (approval or change) of an organisation, None until it sets one."""
    row = session.get(row_type, org)
    return row.policy if row else None


def replace_policy(session: Session, row_type: type, org: str, stored: dict, actor: str,
                   now: dt.datetime) -> dict | None:
    """Store an organisation's policy; the one it replaces is returned for the audit trail."""
    row = session.get(row_type, org, with_for_update=True)
    if row is None:
        session.add(row_type(org=org, policy=stored, updated_by=actor, updated_at=now))
        return None
    before = row.policy
    row.policy, row.updated_by, row.updated_at = stored, actor, now
    return before
