"""Subscriptions: an organisation's standing order "tell <recipient> about <these events>".

Event types match with shell wildcards (`sla.*`, `payment.*due`, `*`), case-sensitively.
Optional filters narrow to some contracts and to some severities: an event's severities are
"urgent" or "normal" and, when the payload states them, its `priority` (P1-P4) or `severity`.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Iterable, Literal

from services.notifications.domain.events import EventFacts
from services.notifications.domain.schedule import DEFAULT_TIMEZONE, QuietHours, next_digest

RecipientKind = Literal["user", "role", "email", "webhook"]
Channel = Literal["inbox", "email", "webhook"]
Language = Literal["zh-CN", "en"]
LANGUAGES = ("zh-CN", "en")
PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,200}$")
EMAIL = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+$")


@dataclass(frozen=True)
class Recipient:
    kind: RecipientKind
    target: str          # the user's id, the role, the e-mail address, the webhook endpoint's id

    @property
    def channel(self) -> Channel:
        return {"user": "inbox", "role": "inbox", "email": "email", "webhook": "webhook"}[self.kind]

    @property
    def key(self) -> tuple[str, str]:
        target = self.target.lower() if self.kind == "email" else self.target
        return self.kind, target


@dataclass(frozen=True)
class Subscription:
    id: str
    org: str
    event_types: tuple[str, ...]
    recipient: Recipient
    language: Language = "zh-CN"
    contract_ids: frozenset[str] | None = None
    severities: frozenset[str] | None = None
    digest: bool = False
    digest_at: dt.time = dt.time(9, 0)
    quiet_hours: QuietHours | None = None
    timezone: str = DEFAULT_TIMEZONE
    active: bool = True
    created_at: dt.datetime = field(default=dt.datetime.min.replace(tzinfo=dt.timezone.utc), compare=False)

    def matches(self, event: EventFacts) -> bool:
        return (self.active and event.org == self.org
                and any(fnmatchcase(event.type, p) for p in self.event_types)
                and (not self.contract_ids or event.contract_id in self.contract_ids)
                and (not self.severities or bool(self.severities & event.tags)))

    def plan(self, event: EventFacts, now: dt.datetime) -> "DeliveryPlan":
        """How and when this subscription's recipient hears of `event`.

        The inbox and webhooks take everything at once (an inbox disturbs nobody; a webhook is a
        machine). E-mail: urgent events at once; the rest in the daily digest, or at once unless
        it is quiet time, in which case when quiet time ends.
        """
        channel = self.recipient.channel
        if channel != "email" or event.urgent:
            return DeliveryPlan(channel, now, digest=False)
        if self.digest:
            return DeliveryPlan(channel, next_digest(now, self.digest_at, self.timezone, self.quiet_hours), digest=True)
        send_at = self.quiet_hours.release(now, self.timezone) if self.quiet_hours else now
        return DeliveryPlan(channel, send_at, digest=False)


@dataclass(frozen=True)
class DeliveryPlan:
    channel: Channel
    send_at: dt.datetime
    digest: bool


def subscriptions_for(event: EventFacts, subscriptions: Iterable[Subscription]) -> list[Subscription]:
    """The subscriptions that deliver `event`: one per recipient, however many of theirs match.

    A recipient covered by an immediate and a digest subscription hears at once; among equals
    the oldest subscription delivers.
    """
    chosen: dict[tuple[str, str], Subscription] = {}
    for sub in sorted((s for s in subscriptions if s.matches(event)), key=lambda s: (s.digest, s.created_at, s.id)):
        chosen.setdefault(sub.recipient.key, sub)
    return list(chosen.values())


def pattern_problem(pattern: str) -> str | None:
    if not PATTERN.match(pattern):
        return "an event type or wildcard pattern: letters, digits, _ . - and * ? [ ] !"
    return None


def email_problem(address: str) -> str | None:
    if len(address) > 320 or not EMAIL.match(address):
        return "not an e-mail address"
    return None
