"""Subscriptions: who hears of which events, through which channel, in which language and when."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork
from shared.errors import Invalid, NotFound, field_error
from shared.idempotency import Answer, IdempotencyKey, once

# The recipient's target field in the API body, by kind.
RECIPIENT_TARGET = {"user": "user", "role": "role", "email": "address", "webhook": "endpoint_id"}
SCALAR_FIELDS = ("event_types", "language", "digest", "digest_at", "timezone", "active")
FILTER_FIELDS = ("contract_ids", "severities")


def create_subscription(uow: NotificationsUnitOfWork, org: str, created_by: str, fields: dict, now: dt.datetime,
                        present: Callable[[Any], dict], idempotency_key: str | None = None) -> Answer:
    """`fields` as the API validated them (recipient as {"kind": ..., <target field>: ...}).
    Returns (201, `present(subscription)`), once per Idempotency-Key."""
    def act() -> Answer:
        recipient = fields["recipient"]
        kind = recipient["kind"]
        target = recipient[RECIPIENT_TARGET[kind]]
        if kind == "webhook" and uow.endpoints.get(org, target) is None:
            raise Invalid("No such webhook endpoint in this organisation.",
                          errors=[field_error("/recipient/endpoint_id", "no such webhook endpoint")])
        quiet = fields.get("quiet_hours") or {}
        row = uow.subscriptions.add(
            org=org, event_types=list(fields["event_types"]), contract_ids=fields.get("contract_ids") or None,
            severities=fields.get("severities") or None, recipient_kind=kind, recipient=target,
            language=fields["language"], digest=fields["digest"], digest_at=fields["digest_at"],
            quiet_start=quiet.get("start"), quiet_end=quiet.get("end"), timezone=fields["timezone"],
            active=fields["active"], created_by=created_by, created_at=now, updated_at=now)
        return 201, present(row)

    return once(uow, IdempotencyKey(org, created_by, "POST /v1/subscriptions", idempotency_key, fields), act)


def update_subscription(uow: NotificationsUnitOfWork, org: str, subscription_id: str, changes: dict,
                        now: dt.datetime):
    """Change the fields given; a filter or quiet hours given as null are removed."""
    with uow:
        row = uow.subscriptions.get(org, subscription_id)
        if row is None:
            raise NotFound(f"No subscription {subscription_id}.")
        for name in SCALAR_FIELDS:
            if changes.get(name) is not None:
                setattr(row, name, changes[name])
        for name in FILTER_FIELDS:
            if name in changes:
                setattr(row, name, changes[name] or None)
        if "quiet_hours" in changes:
            quiet = changes["quiet_hours"] or {}
            row.quiet_start, row.quiet_end = quiet.get("start"), quiet.get("end")
        row.updated_at = now
        uow.subscriptions.save(row)
        uow.commit()
    return row


def delete_subscription(uow: NotificationsUnitOfWork, org: str, subscription_id: str) -> None:
    """Deliveries already made stay in the log."""
    with uow:
        row = uow.subscriptions.get(org, subscription_id)
        if row is None:
            raise NotFound(f"No subscription {subscription_id}.")
        uow.subscriptions.delete(row)
        uow.commit()
