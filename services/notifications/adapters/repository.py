"""Queries and row <-> domain translation. Every query names the organisation it reads."""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from services.notifications.adapters.tables import (AttemptRow, DeliveryRow, EndpointRow, InboxItemRow,
                                                    InboxReadRow, KnownContractRow, SubscriptionRow)
from services.notifications.domain.endpoints import EndpointHealth
from services.notifications.domain.events import ContractFacts
from services.notifications.domain.schedule import QuietHours
from services.notifications.domain.subscriptions import Recipient, Subscription


def hhmm(value: str) -> dt.time:
    return dt.time.fromisoformat(value)


# --- subscriptions -----------------------------------------------------------------------------

def subscription_of(row: SubscriptionRow) -> Subscription:
    quiet = QuietHours(hhmm(row.quiet_start), hhmm(row.quiet_end)) if row.quiet_start and row.quiet_end else None
    return Subscription(
        id=row.id, org=row.org, event_types=tuple(row.event_types), recipient=Recipient(row.recipient_kind, row.recipient),
        language=row.language, contract_ids=frozenset(row.contract_ids) if row.contract_ids else None,
        severities=frozenset(row.severities) if row.severities else None, digest=row.digest,
        digest_at=hhmm(row.digest_at), quiet_hours=quiet, timezone=row.timezone, active=row.active,
        created_at=row.created_at)


def active_subscriptions(session: Session, org: str) -> list[Subscription]:
    rows = session.scalars(select(SubscriptionRow).where(SubscriptionRow.org == org, SubscriptionRow.active.is_(True)))
    return [subscription_of(r) for r in rows]


def get_subscription(session: Session, org: str, subscription_id: str) -> SubscriptionRow | None:
    return session.scalars(select(SubscriptionRow).where(SubscriptionRow.org == org,
                                                         SubscriptionRow.id == subscription_id)).first()


def list_subscriptions(session: Session, org: str, after: str | None, limit: int) -> list[SubscriptionRow]:
    query = select(SubscriptionRow).where(SubscriptionRow.org == org)
    if after:
        query = query.where(SubscriptionRow.id > after)
    return list(session.scalars(query.order_by(SubscriptionRow.id).limit(limit)))


# --- webhook endpoints -------------------------------------------------------------------------

def get_endpoint(session: Session, org: str, endpoint_id: str) -> EndpointRow | None:
    return session.scalars(select(EndpointRow).where(EndpointRow.org == org, EndpointRow.id == endpoint_id)).first()


def list_endpoints(session: Session, org: str, after: str | None, limit: int) -> list[EndpointRow]:
    query = select(EndpointRow).where(EndpointRow.org == org)
    if after:
        query = query.where(EndpointRow.id > after)
    return list(session.scalars(query.order_by(EndpointRow.id).limit(limit)))


def active_endpoint_ids(session: Session, org: str) -> set[str]:
    return set(session.scalars(select(EndpointRow.id).where(EndpointRow.org == org, EndpointRow.status == "active")))


def health_of(row: EndpointRow) -> EndpointHealth:
    return EndpointHealth(row.failing_since, row.failed_deliveries)


# --- deliveries --------------------------------------------------------------------------------

def subscriptions_already_delivering(session: Session, event_id: str) -> set[str]:
    return set(session.scalars(select(DeliveryRow.subscription_id).where(DeliveryRow.event_id == event_id)))


def due_deliveries(session: Session, now: dt.datetime, limit: int) -> list[DeliveryRow]:
    """Pending deliveries whose time has come, and claimed ones whose claim ran out (a crashed sender)."""
    return list(session.scalars(
        select(DeliveryRow).where(DeliveryRow.status.in_(("pending", "sending")), DeliveryRow.next_attempt_at <= now)
        .order_by(DeliveryRow.next_attempt_at).limit(limit)))


def next_due(session: Session) -> dt.datetime | None:
    return session.scalar(select(func.min(DeliveryRow.next_attempt_at))
                          .where(DeliveryRow.status.in_(("pending", "sending"))))


def get_delivery(session: Session, org: str, delivery_id: str) -> DeliveryRow | None:
    return session.scalars(select(DeliveryRow).where(DeliveryRow.org == org, DeliveryRow.id == delivery_id)).first()


def list_deliveries(session: Session, org: str, after: tuple[dt.datetime, str] | None, limit: int,
                    **where) -> list[DeliveryRow]:
    """Newest first; `where` filters on status, channel, event_id, subscription_id, contract_id."""
    query = select(DeliveryRow).where(DeliveryRow.org == org)
    for name, value in where.items():
        if value is not None:
            query = query.where(getattr(DeliveryRow, name) == value)
    if after:
        at, last_id = after
        query = query.where(or_(DeliveryRow.created_at < at, and_(DeliveryRow.created_at == at, DeliveryRow.id < last_id)))
    return list(session.scalars(query.order_by(DeliveryRow.created_at.desc(), DeliveryRow.id.desc()).limit(limit)))


def attempts_of(session: Session, delivery_id: str) -> list[AttemptRow]:
    return list(session.scalars(select(AttemptRow).where(AttemptRow.delivery_id == delivery_id)
                                .order_by(AttemptRow.number)))


# --- inbox -------------------------------------------------------------------------------------

def _visible(org: str, user: str, roles: Iterable[str]):
    return and_(InboxItemRow.org == org,
                or_(and_(InboxItemRow.recipient_kind == "user", InboxItemRow.recipient == user),
                    and_(InboxItemRow.recipient_kind == "role", InboxItemRow.recipient.in_(sorted(roles)))))


def _read_by(user: str):
    return and_(InboxReadRow.item_id == InboxItemRow.id, InboxReadRow.user_id == user)


def inbox(session: Session, org: str, user: str, roles: Iterable[str], after: tuple[dt.datetime, str] | None, limit: int,
          unread_only: bool) -> list[tuple[InboxItemRow, dt.datetime | None]]:
    query = (select(InboxItemRow, InboxReadRow.read_at).outerjoin(InboxReadRow, _read_by(user))
             .where(_visible(org, user, roles)))
    if unread_only:
        query = query.where(InboxReadRow.read_at.is_(None))
    if after:
        at, last_id = after
        query = query.where(or_(InboxItemRow.created_at < at,
                                and_(InboxItemRow.created_at == at, InboxItemRow.id < last_id)))
    query = query.order_by(InboxItemRow.created_at.desc(), InboxItemRow.id.desc()).limit(limit)
    return [(item, read_at) for item, read_at in session.execute(query)]


def unread_count(session: Session, org: str, user: str, roles: Iterable[str]) -> int:
    return session.scalar(select(func.count()).select_from(InboxItemRow).outerjoin(InboxReadRow, _read_by(user))
                          .where(_visible(org, user, roles), InboxReadRow.read_at.is_(None)))


def inbox_item(session: Session, org: str, user: str, roles: Iterable[str],
               item_id: str) -> tuple[InboxItemRow, dt.datetime | None] | None:
    row = session.execute(select(InboxItemRow, InboxReadRow.read_at).outerjoin(InboxReadRow, _read_by(user))
                          .where(_visible(org, user, roles), InboxItemRow.id == item_id)).first()
    return (row[0], row[1]) if row else None


# --- contracts we have heard of ----------------------------------------------------------------

def remember_contract(session: Session, org: str, facts: ContractFacts, now: dt.datetime) -> None:
    row = session.get(KnownContractRow, (org, facts.contract_id))
    if row is None:
        session.add(KnownContractRow(org=org, contract_id=facts.contract_id, title=facts.title[:500],
                                     number=facts.number, currency=facts.currency, updated_at=now))
        return
    row.title, row.updated_at = facts.title[:500], now
    row.number = facts.number or row.number
    row.currency = facts.currency or row.currency


def contract(session: Session, org: str, contract_id: str) -> ContractFacts | None:
    row = session.get(KnownContractRow, (org, contract_id))
    return ContractFacts(row.contract_id, row.title, row.number, row.currency) if row else None
