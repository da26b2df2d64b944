"""Read models of the notifications service: read-only queries shaped for the API.

Each takes the service's `Database` and opens its own read session, so routes never do. Rows
come back detached (sessions do not expire them); `api/schemas.py` formats them.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import and_, func, or_, select

from services.notifications.adapters.repository import read_by, visible
from services.notifications.adapters.tables import (AttemptRow, DeliveryRow, EndpointRow, InboxItemRow,
                                                    InboxReadRow, SubscriptionRow)
from shared.db import Database

After = tuple[dt.datetime, str] | None      # the last (created_at, id) seen, for lists newest first


def subscriptions(db: Database, org: str, after: str | None, limit: int) -> list[SubscriptionRow]:
    query = select(SubscriptionRow).where(SubscriptionRow.org == org)
    if after:
        query = query.where(SubscriptionRow.id > after)
    with db.read_session() as session:
        return list(session.scalars(query.order_by(SubscriptionRow.id).limit(limit)))


def subscription(db: Database, org: str, subscription_id: str) -> SubscriptionRow | None:
    with db.read_session() as session:
        return session.scalars(select(SubscriptionRow).where(SubscriptionRow.org == org,
                                                             SubscriptionRow.id == subscription_id)).first()


def endpoints(db: Database, org: str, after: str | None, limit: int) -> list[EndpointRow]:
    query = select(EndpointRow).where(EndpointRow.org == org)
    if after:
        query = query.where(EndpointRow.id > after)
    with db.read_session() as session:
        return list(session.scalars(query.order_by(EndpointRow.id).limit(limit)))


def endpoint(db: Database, org: str, endpoint_id: str) -> EndpointRow | None:
    with db.read_session() as session:
        return session.scalars(select(EndpointRow).where(EndpointRow.org == org, EndpointRow.id == endpoint_id)).first()


def deliveries(db: Database, org: str, after: After, limit: int, **where) -> list[DeliveryRow]:
    """Newest first; `where` filters on status, channel, event_id, subscription_id, contract_id."""
    query = select(DeliveryRow).where(DeliveryRow.org == org)
    for name, value in where.items():
        if value is not None:
            query = query.where(getattr(DeliveryRow, name) == value)
    if after:
        at, last_id = after
        query = query.where(or_(DeliveryRow.created_at < at, and_(DeliveryRow.created_at == at, DeliveryRow.id < last_id)))
    with db.read_session() as session:
        return list(session.scalars(query.order_by(DeliveryRow.created_at.desc(), DeliveryRow.id.desc()).limit(limit)))


def delivery(db: Database, org: str, delivery_id: str) -> tuple[DeliveryRow, list[AttemptRow]] | None:
    """One delivery and its attempt log, oldest attempt first."""
    with db.read_session() as session:
        row = session.scalars(select(DeliveryRow).where(DeliveryRow.org == org, DeliveryRow.id == delivery_id)).first()
        if row is None:
            return None
        attempts = list(session.scalars(select(AttemptRow).where(AttemptRow.delivery_id == row.id)
                                        .order_by(AttemptRow.number)))
    return row, attempts


def inbox(db: Database, org: str, user: str, roles: Iterable[str], after: After, limit: int,
          unread_only: bool) -> tuple[list[tuple[InboxItemRow, dt.datetime | None]], int]:
    """The caller's items newest first, each with when they read it, and how many they have not read."""
    query = (select(InboxItemRow, InboxReadRow.read_at).outerjoin(InboxReadRow, read_by(user))
             .where(visible(org, user, roles)))
    if unread_only:
        query = query.where(InboxReadRow.read_at.is_(None))
    if after:
        at, last_id = after
        query = query.where(or_(InboxItemRow.created_at < at,
                                and_(InboxItemRow.created_at == at, InboxItemRow.id < last_id)))
    query = query.order_by(InboxItemRow.created_at.desc(), InboxItemRow.id.desc()).limit(limit)
    with db.read_session() as session:
        items = [(item, read_at) for item, read_at in session.execute(query)]
        unread = session.scalar(select(func.count()).select_from(InboxItemRow).outerjoin(InboxReadRow, read_by(user))
                                .where(visible(org, user, roles), InboxReadRow.read_at.is_(None)))
    return items, unread
