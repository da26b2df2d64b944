"""Request bodies of the notifications API, and the response bodies built from rows and aggregates."""
from __future__ import annotations

from typing import Annotated, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.notifications.domain.subscriptions import email_problem, pattern_problem
from shared.auth import ROLES

HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])]
Role = Literal[ROLES]  # type: ignore[valid-type]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserRecipient(_Body):
    kind: Literal["user"]
    user: str = Field(min_length=1, max_length=200, description="The user's id (the token's `sub`).")


class RoleRecipient(_Body):
    kind: Literal["role"]
    role: Role = Field(description="Everyone holding this role in the organisation.")


class EmailRecipient(_Body):
    kind: Literal["email"]
    address: str = Field(min_length=3, max_length=320)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        problem = email_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class WebhookRecipient(_Body):
    kind: Literal["webhook"]
    endpoint_id: str = Field(min_length=1, max_length=32)


RecipientIn = Annotated[Union[UserRecipient, RoleRecipient, EmailRecipient, WebhookRecipient],
                        Field(discriminator="kind")]


class QuietHoursIn(_Body):
    start: HHMM
    end: HHMM


def _patterns(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        problem = pattern_problem(value)
        if problem:
            raise ValueError(f"{value!r} is not {problem}")
    return values


def _timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone, e.g. Asia/Shanghai") from None
    return value


class _SubscriptionFields(_Body):
    contract_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=500, description="Only these contracts (default: all).")
    severities: list[Annotated[str, Field(min_length=1, max_length=20)]] | None = Field(
        default=None, max_length=20, description='Only events with one of these: "urgent", "normal", "P1".."P4".')
    digest: bool = Field(default=False, description="E-mail: non-urgent events in one daily digest.")
    digest_at: HHMM = Field(default="09:00", description="Local time of the daily digest.")
    quiet_hours: QuietHoursIn | None = Field(default=None, description="E-mail: no non-urgent mail in this period.")
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    active: bool = True

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        return _timezone(value)


class SubscriptionIn(_SubscriptionFields):
    event_types: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=50, examples=[["sla.*", "payment.overdue"]],
        description="Event types or shell wildcards (`sla.*`, `*`).")
    recipient: RecipientIn
    language: Literal["zh-CN", "en"] = "zh-CN"

    @field_validator("event_types")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        return _patterns(value)


class SubscriptionPatch(_Body):
    """The fields to change; the recipient cannot change (create another subscription)."""
    event_types: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=50)
    language: Literal["zh-CN", "en"] | None = None
    contract_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(default=None, max_length=500)
    severities: list[Annotated[str, Field(min_length=1, max_length=20)]] | None = Field(default=None, max_length=20)
    digest: bool | None = None
    digest_at: HHMM | None = None
    quiet_hours: QuietHoursIn | None = None
    timezone: str | None = Field(default=None, max_length=64)
    active: bool | None = None

    @field_validator("event_types")
    @classmethod
    def _check_patterns(cls, value: list[str] | None) -> list[str] | None:
        return _patterns(value)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        return _timezone(value)


class EndpointIn(_Body):
    url: str = Field(min_length=1, max_length=2000, examples=["https://hooks.example.com/qiyue"])
    description: str | None = Field(default=None, max_length=500)


# --- responses ---------------------------------------------------------------------------------
# Built from table rows (services/notifications/views.py) or the domain's aggregates alike:
# both carry the same attribute names.

RECIPIENT_FIELD = {"user": "user", "role": "role", "email": "address", "webhook": "endpoint_id"}


def _iso(value):
    return value.isoformat() if value is not None else None


def subscription_view(row) -> dict:
    return {
        "id": row.id, "event_types": row.event_types, "contract_ids": row.contract_ids, "severities": row.severities,
        "recipient": {"kind": row.recipient_kind, RECIPIENT_FIELD[row.recipient_kind]: row.recipient},
        "language": row.language, "digest": row.digest, "digest_at": row.digest_at,
        "quiet_hours": {"start": row.quiet_start, "end": row.quiet_end} if row.quiet_start else None,
        "timezone": row.timezone, "active": row.active, "created_by": row.created_by,
        "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
    }


def endpoint_view(row, secret: str | None = None) -> dict:
    view = {
        "id": row.id, "url": row.url, "description": row.description, "status": row.status,
        "failing_since": _iso(row.failing_since), "failed_deliveries": row.failed_deliveries,
        "disabled_at": _iso(row.disabled_at), "disabled_reason": row.disabled_reason,
        "created_by": row.created_by, "created_at": _iso(row.created_at),
    }
    if secret is not None:
        view["secret"] = secret   # shown once, when the endpoint is created
    return view


def attempt_view(row) -> dict:
    return {"number": row.number, "at": _iso(row.at), "outcome": row.outcome, "status_code": row.status_code,
            "error": row.error, "duration_ms": row.duration_ms}


def delivery_view(row, attempts: list | None = None) -> dict:
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


def inbox_item_view(row, read_at) -> dict:
    return {"id": row.id, "event_id": row.event_id, "event_type": row.event_type, "contract_id": row.contract_id,
            "subject": row.subject, "body": row.body, "link": row.link, "created_at": _iso(row.created_at),
            "read": read_at is not None, "read_at": _iso(read_at)}
