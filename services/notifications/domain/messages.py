"""What a message says, independent of how it is laid out: the facts a template is given.

Amounts are shown in figures with thousands separators and two decimals (¥1,234,567.89); any
payload field whose name says it is money is formatted, so a new event type's amounts show up
in the generic template too. The link points at the resource in the web app.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from services.notifications.domain.events import ContractFacts, EventFacts

MONEY_FIELDS = frozenset({"amount", "total_amount", "outstanding", "remaining", "contract_total", "monthly_fee"})
SYMBOLS = {"CNY": "¥", "RMB": "¥"}
# Where an event's resource lives in the web app, by the event type's first segment.
SECTIONS = {
    "contract": "", "payment_schedule": "/payments", "payment": "/payments", "milestone": "/payments",
    "invoice": "/payments", "late_fee": "/payments", "retention": "/payments", "credit": "/payments",
    "sla": "/sla", "change_request": "/change-requests",
}


def is_money_field(name: str) -> bool:
    return name in MONEY_FIELDS or name.endswith("_amount")


def format_amount(value: Any, currency: str | None = "CNY") -> str:
    """¥1,234,567.89 for yuan; "USD 1,234.00" for other currencies; the value as given if not a number."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    figures = f"{amount:,.2f}"
    code = (currency or "CNY").upper()
    if code in SYMBOLS:
        return ("-" + SYMBOLS[code] + figures[1:]) if figures.startswith("-") else SYMBOLS[code] + figures
    return f"{code} {figures}"


def amounts_of(data: Mapping[str, Any], currency: str | None) -> dict[str, str]:
    return {k: format_amount(v, currency) for k, v in data.items()
            if is_money_field(k) and isinstance(v, (str, int, Decimal)) and not isinstance(v, bool)}


def display_fields(data: Mapping[str, Any], currency: str | None) -> list[tuple[str, str]]:
    """The payload's plain fields as (name, shown value), for templates that know nothing of the type."""
    hidden = {"org", "contract_id", "currency"}
    out = []
    for name, value in data.items():
        if name in hidden or isinstance(value, (dict, list)) or value is None:
            continue
        out.append((name, format_amount(value, currency) if is_money_field(name) else str(value)))
    return out


def resource_link(base_url: str | None, event_type: str, contract_id: str) -> str | None:
    if not base_url or not contract_id:
        return None
    section = SECTIONS.get(event_type.split(".", 1)[0], "")
    return f"{base_url.rstrip('/')}/contracts/{contract_id}{section}"


def local_time(instant: dt.datetime, timezone: str) -> str:
    return instant.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def message_context(event: EventFacts, contract: ContractFacts | None, *, base_url: str | None,
                    timezone: str, language: str) -> dict[str, Any]:
    """Everything a template may use. `data` is the payload as published."""
    currency = event.data.get("currency") or (contract.currency if contract else None) or "CNY"
    return {
        "event_type": event.type,
        "event_id": event.id,
        "language": language,
        "urgent": event.urgent,
        "occurred_at": local_time(event.time, timezone),
        "timezone": timezone,
        "contract": {"id": event.contract_id, "title": contract.title if contract else None,
                     "number": contract.number if contract else None},
        "currency": currency,
        "data": dict(event.data),
        "amounts": amounts_of(event.data, currency),
        "fields": display_fields(event.data, currency),
        "link": resource_link(base_url, event.type, event.contract_id),
    }
