"""Repositories of the notifications service: the only SQL besides `views.py`. Every query names
the organisation it reads; rows are translated to the domain's aggregates where there are some
(deliveries, webhook endpoints, subscriptions for matching)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterable

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from services.notifications.adapters.dead_letters import dead_letter
from services.notifications.adapters.tables import (AttemptRow, DeliveryRow, EndpointRow, InboxItemRow,
                                                    InboxReadRow, KnownContractRow, SubscriptionRow)
from services.notifications.domain.deliveries import Delivery
from services.notifications.domain.endpoints import WebhookEndpoint
from services.notifications.domain.events import ContractFacts
from services.notifications.domain.schedule import QuietHours
from services.notifications.domain.subscriptions import Recipient, Subscription
from shared.ids import new_id


def hhmm(value: str) -> dt.time:
    return dt.time.fromisoformat(value)


def _columns(aggregate) -> dict:
    """An aggregate's stored fields (its recorded events and new attempts are not columns)."""
    return {f.name: getattr(aggregate, f.name) for f in dataclasses.fields(aggregate)
            if f.name not in ("events", "new_attempts")}


def _aggregate(cls, row):
    names = {f.name for f in dataclasses.fields(cls)} - {"events", "new_attempts"}
    return cls(**{name: getattr(row, name) for name in names})


# --- subscriptions -----------------------------------------------------------------------------

def subscription_of(row: SubscriptionRow) -> Subscription:
    quiet = QuietHours(hhmm(row.quiet_start), hhmm(row.quiet_end)) if row.quiet_start and row.quiet_end else None
    return Subscription(
        id=row.id, org=row.org, event_types=tuple(row.event_types), recipient=Recipient(row.recipient_kind, row.recipient),
        language=row.language, contract_ids=frozenset(row.contract_ids) if row.contract_ids else None,
        severities=frozenset(row.severities) if row.severities else None, digest=row.digest,
        digest_at=hhmm(row.digest_at), quiet_hours=quiet, timezone=row.timezone, active=row.active,
        created_at=row.created_at)


class SubscriptionRepository:
    def __init__(self, session: Session):
        self.session = session

    def active(self, org: str) -> list[Subscription]:
        rows = self.session.scalars(select(SubscriptionRow).where(SubscriptionRow.org == org,
                                                                  SubscriptionRow.active.is_(True)))
        return [subscription_of(r) for r in rows]

    def get(self, org: str, subscription_id: str) -> SubscriptionRow | None:
        return self.session.scalars(select(SubscriptionRow).where(SubscriptionRow.org == org,
                                                                  SubscriptionRow.id == subscription_id)).first()

    def add(self, **values) -> SubscriptionRow:
        row = SubscriptionRow(id=new_id(), **values)
        self.session.add(row)
        self.session.flush()
        return row

    def save(self, row: SubscriptionRow) -> None:
        self.session.flush()

    def delete(self, row: SubscriptionRow) -> None:
        self.session.delete(row)

    def stop_for_endpoint(self, org: str, endpoint_id: str) -> None:
        self.session.execute(update(SubscriptionRow).where(
            SubscriptionRow.org == org, SubscriptionRow.recipient_kind == "webhook",
            SubscriptionRow.recipient == endpoint_id).values(active=False))


# --- webhook endpoints -------------------------------------------------------------------------

class EndpointRepository:
    def __init__(self, session: Session):
        self.session = session

    def _row(self, org: str, endpoint_id: str) -> EndpointRow | None:
        return self.session.scalars(select(EndpointRow).where(EndpointRow.org == org,
                                                              EndpointRow.id == endpoint_id)).first()

    def get(self, org: str, endpoint_id: str) -> WebhookEndpoint | None:
        row = self._row(org, endpoint_id)
        return _aggregate(WebhookEndpoint, row) if row is not None else None

    def add(self, endpoint: WebhookEndpoint) -> None:
        self.session.add(EndpointRow(**_columns(endpoint)))
        self.session.flush()

    def save(self, endpoint: WebhookEndpoint) -> None:
        row = self._row(endpoint.org, endpoint.id)
        for name, value in _columns(endpoint).items():
            setattr(row, name, value)
        self.session.flush()

    def delete(self, org: str, endpoint_id: str) -> None:
        self.session.execute(delete(EndpointRow).where(EndpointRow.org == org, EndpointRow.id == endpoint_id))

    def active_ids(self, org: str) -> set[str]:
        return set(self.session.scalars(select(EndpointRow.id).where(EndpointRow.org == org,
                                                                     EndpointRow.status == "active")))


# --- deliveries --------------------------------------------------------------------------------

class DeliveryRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, org: str, delivery_id: str) -> Delivery | None:
        row = self.session.scalars(select(DeliveryRow).where(DeliveryRow.org == org,
                                                             DeliveryRow.id == delivery_id)).first()
        return _aggregate(Delivery, row) if row is not None else None

    def get_by_id(self, delivery_id: str) -> Delivery | None:
        row = self.session.get(DeliveryRow, delivery_id)
        return _aggregate(Delivery, row) if row is not None else None

    def add(self, delivery: Delivery) -> None:
        self.session.add(DeliveryRow(**_columns(delivery)))
        self._write_attempts(delivery)
        self.session.flush()

    def save(self, delivery: Delivery) -> None:
        row = self.session.get(DeliveryRow, delivery.id)
        for name, value in _columns(delivery).items():
            setattr(row, name, value)
        self._write_attempts(delivery)
        self.session.flush()

    def _write_attempts(self, delivery: Delivery) -> None:
        self.session.add_all(AttemptRow(delivery_id=delivery.id, org=delivery.org, **dataclasses.asdict(a))
                             for a in delivery.new_attempts)
        delivery.new_attempts.clear()

    def subscriptions_already_delivering(self, event_id: str) -> set[str]:
        return set(self.session.scalars(select(DeliveryRow.subscription_id).where(DeliveryRow.event_id == event_id)))

    def due(self, now: dt.datetime, limit: int) -> list[Delivery]:
        """Pending deliveries whose time has come, and claimed ones whose claim ran out (a crashed sender)."""
        rows = self.session.scalars(
            select(DeliveryRow).where(DeliveryRow.status.in_(("pending", "sending")), DeliveryRow.next_attempt_at <= now)
            .order_by(DeliveryRow.next_attempt_at).limit(limit))
        return [_aggregate(Delivery, r) for r in rows]

    def claim(self, delivery: Delivery, until: dt.datetime) -> bool:
        """Take a delivery to send, if nobody else did since it was read (its status and attempts as read)."""
        claimed = self.session.execute(
            update(DeliveryRow).where(DeliveryRow.id == delivery.id, DeliveryRow.status == delivery.status,
                                      DeliveryRow.attempts == delivery.attempts)
            .values(status="sending", next_attempt_at=until).execution_options(synchronize_session=False)).rowcount == 1
        if claimed:
            delivery.status, delivery.next_attempt_at = "sending", until
        return claimed

    def next_due(self) -> dt.datetime | None:
        return self.session.scalar(select(func.min(DeliveryRow.next_attempt_at))
                                   .where(DeliveryRow.status.in_(("pending", "sending"))))


class DeadLetters:
    """Failed deliveries on `notifications.events.dlq`, through the outbox (adapters/dead_letters.py)."""

    def __init__(self, session: Session):
        self.session = session

    def add(self, delivery: Delivery, now: dt.datetime) -> None:
        dead_letter(self.session, delivery, now)


# --- inbox -------------------------------------------------------------------------------------

def visible(org: str, user: str, roles: Iterable[str]):
    """Inbox items addressed to `user`, or to a role they hold."""
    return and_(InboxItemRow.org == org,
                or_(and_(InboxItemRow.recipient_kind == "user", InboxItemRow.recipient == user),
                    and_(InboxItemRow.recipient_kind == "role", InboxItemRow.recipient.in_(sorted(roles)))))


def read_by(user: str):
    return and_(InboxReadRow.item_id == InboxItemRow.id, InboxReadRow.user_id == user)


class InboxRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, org: str, recipient: Recipient, event_id: str, event_type: str, contract_id: str | None,
            subject: str, body: str, link: str | None, now: dt.datetime, delivery_id: str | None) -> None:
        self.session.add(InboxItemRow(id=new_id(), org=org, recipient_kind=recipient.kind, recipient=recipient.target,
                                      delivery_id=delivery_id, event_id=event_id, event_type=event_type,
                                      contract_id=contract_id or None, subject=subject, body=body, link=link,
                                      created_at=now))

    def item(self, org: str, user: str, roles: Iterable[str],
             item_id: str) -> tuple[InboxItemRow, dt.datetime | None] | None:
        row = self.session.execute(select(InboxItemRow, InboxReadRow.read_at).outerjoin(InboxReadRow, read_by(user))
                                   .where(visible(org, user, roles), InboxItemRow.id == item_id)).first()
        return (row[0], row[1]) if row else None

    def mark_read(self, item_id: str, user: str, now: dt.datetime) -> None:
        self.session.add(InboxReadRow(item_id=item_id, user_id=user, read_at=now))

    def mark_all_read(self, org: str, user: str, roles: Iterable[str], now: dt.datetime) -> int:
        unread = list(self.session.scalars(select(InboxItemRow.id).outerjoin(InboxReadRow, read_by(user))
                                           .where(visible(org, user, roles), InboxReadRow.read_at.is_(None)).limit(10_000)))
        self.session.add_all(InboxReadRow(item_id=item_id, user_id=user, read_at=now) for item_id in unread)
        return len(unread)


# --- contracts we have heard of ----------------------------------------------------------------

class KnownContractRepository:
    def __init__(self, session: Session):
        self.session = session

    def remember(self, org: str, facts: ContractFacts, now: dt.datetime) -> None:
        row = self.session.get(KnownContractRow, (org, facts.contract_id))
        if row is None:
            self.session.add(KnownContractRow(org=org, contract_id=facts.contract_id, title=facts.title[:500],
                                              number=facts.number, currency=facts.currency, updated_at=now))
            return
        row.title, row.updated_at = facts.title[:500], now
        row.number = facts.number or row.number
        row.currency = facts.currency or row.currency

    def get(self, org: str, contract_id: str) -> ContractFacts | None:
        row = self.session.get(KnownContractRow, (org, contract_id))
        return ContractFacts(row.contract_id, row.title, row.number, row.currency) if row else None
