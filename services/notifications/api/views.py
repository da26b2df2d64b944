"""Response bodies of the notifications API."""
from __future__ import annotations

from services.notifications.adapters.tables import (AttemptRow, DeliveryRow, EndpointRow, InboxItemRow,
                                                    SubscriptionRow)

RECIPIENT_FIELD = {"user": "user", "role": "role", "email": "address", "webhook": "endpoint_id"}


def _iso(value):
    return value.isoformat() if value is not None else None


def subscription_view(row: SubscriptionRow) -> dict:
    return {
        "id": row.id, "event_types": row.event_types, "contract_ids": row.contract_ids, "severities": row.severities,
        "recipient": {"kind": row.recipient_kind, RECIPIENT_FIELD[row.recipient_kind]: row.recipient},
        "language": row.language, "digest": row.digest, "digest_at": row.digest_at,
        "quiet_hours": {"start": row.quiet_start, "end": row.quiet_end} if row.quiet_start else None,
        "timezone": row.timezone, "active": row.active, "created_by": row.created_by,
        "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
    }


def endpoint_view(row: EndpointRow, secret: str | None = None) -> dict:
    view = {
        "id": row.id, "url": row.url, "description": row.description, "status": row.status,
        "failing_since": _iso(row.failing_since), "failed_deliveries": row.failed_deliveries,
        "disabled_at": _iso(row.disabled_at), "disabled_reason": row.disabled_reason,
        "created_by": row.created_by, "created_at": _iso(row.created_at),
    }
    if secret is not None:
        view["secret"] = secret   # shown once, when the endpoint is created
    return view


def attempt_view(row: AttemptRow) -> dict:
    return {"number": row.number, "at": _iso(row.at), "outcome": row.outcome, "status_code": row.status_code,
            "error": row.error, "duration_ms": row.duration_ms}


def delivery_view(row: DeliveryRow, attempts: list[AttemptRow] | None = None) -> dict:
    view = {
        "id": row.id, "event_id": row.event_id, "event_type": row.event_type, "contract_id": row.contract_id,
        "subscription_id": row.subscription_id, "channel": row.channel, "recipient": row.recipient,
        "language": row.language, "urgent": row.urgent, "digest": row.digest, "status": row.status,
        "attempts": row.attempts, "next_attempt_at": _iso(row.next_attempt_at), "last_error": row.last_error,
        "created_at": _iso(row.created_at), "delivered_at": _iso(row.delivered_at), "failed_at": _iso(row.failed_at),
    }
    if attempts is not None:
        view["attempt_log"] = [attempt_view(a) for a in attempts]
        view["event"] = row.event
    return view


def inbox_item_view(row: InboxItemRow, read_at) -> dict:
    return {"id": row.id, "event_id": row.event_id, "event_type": row.event_type, "contract_id": row.contract_id,
            "subject": row.subject, "body": row.body, "link": row.link, "created_at": _iso(row.created_at),
            "read": read_at is not None, "read_at": _iso(read_at)}
