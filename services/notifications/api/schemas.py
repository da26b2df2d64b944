"""Request bodies of the notifications API (responses are built in api/views.py)."""
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
