"""What the notifications service needs to know about any event, whatever its type.

Every payload on the platform carries `org` and (almost always) `contract_id`; some carry a
`priority` (SLA) or a `severity`. Nothing here knows individual event types beyond the few that
are urgent, so a new event type is routed, rendered and delivered without a code change.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

# These go out at once, whatever the subscription's digest or quiet hours say.
URGENT_TYPES = frozenset({"sla.breached", "payment.overdue", "change_request.overdue", "contract.renewal_due"})


@dataclass(frozen=True)
class EventFacts:
    """The routing-relevant facts of one CloudEvent."""
    id: str
    type: str
    org: str | None
    contract_id: str
    time: dt.datetime
    tags: frozenset[str]        # "urgent" or "normal", plus the payload's priority / severity if any
    data: Mapping[str, Any]

    @property
    def urgent(self) -> bool:
        return self.type in URGENT_TYPES

    @classmethod
    def of(cls, id: str, type: str, subject: str, time: str, data: Mapping[str, Any]) -> "EventFacts":
        org = data.get("org")
        contract_id = data.get("contract_id") or subject or ""
        tags = {"urgent" if type in URGENT_TYPES else "normal"}
        for key in ("priority", "severity"):
            if isinstance(data.get(key), str):
                tags.add(data[key])
        return cls(id=id, type=type, org=org if isinstance(org, str) and org else None,
                   contract_id=str(contract_id), time=parse_instant(time), tags=frozenset(tags), data=data)


@dataclass(frozen=True)
class ContractFacts:
    """What we have learnt about a contract from the events that name it (its title above all)."""
    contract_id: str
    title: str | None = None
    number: str | None = None
    currency: str | None = None


def contract_facts_in(event_type: str, data: Mapping[str, Any]) -> ContractFacts | None:
    """The contract's title/number/currency if this payload states them: its `terms`, or the top
    level of a `contract.*` event (elsewhere a `title` is something else's, e.g. a change request's)."""
    if isinstance(data.get("terms"), Mapping):
        source = data["terms"]
    elif event_type.startswith("contract."):
        source = data
    else:
        return None
    title = source.get("title")
    if not isinstance(title, str) or not title or not data.get("contract_id"):
        return None
    number, currency = source.get("number"), source.get("currency")
    return ContractFacts(str(data["contract_id"]), title, number if isinstance(number, str) else None,
                         currency if isinstance(currency, str) else None)


def parse_instant(value: str | None) -> dt.datetime:
    """A CloudEvent `time`; an event without one counts as happening now."""
    try:
        at = dt.datetime.fromisoformat((value or "").replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.now(dt.timezone.utc)
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)
