"""A delivery: one event to one recipient through one channel, and how each attempt went.

    pending (waits for `next_attempt_at`) -> sending (claimed until `next_attempt_at`) ->
    delivered | pending again (retry, or released unsent) | failed (for good; dead-lettered).

The aggregate records `notification.delivered` / `notification.failed` in `events` and the
attempts it made in `new_attempts`; the unit of work writes both with its state.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

from services.notifications.domain.attempts import Outcome, settle
from services.notifications.domain.schedule import RetryPolicy
from shared.errors import Conflict
from shared.events.base import EventPayload
from shared.events.notifications import NotificationDelivered, NotificationFailed


@dataclass(frozen=True)
class Attempt:
    number: int
    at: dt.datetime
    outcome: str                      # delivered | failed | refused
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None


@dataclass(eq=False)
class Delivery:
    id: str
    org: str
    event_id: str
    subscription_id: str
    event_type: str
    topic: str                        # where the event came from
    contract_id: str
    event: dict[str, Any]             # the CloudEvent, structured form
    channel: str                      # inbox | email | webhook
    recipient: str
    language: str
    timezone: str
    created_at: dt.datetime
    urgent: bool = False
    digest: bool = False
    status: str = "pending"
    attempts: int = 0                 # all attempts, ever
    round_attempts: int = 0           # since `retry_since` (redeliver starts over)
    next_attempt_at: dt.datetime | None = None
    retry_since: dt.datetime | None = None
    last_error: str | None = None
    delivered_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    events: list[EventPayload] = field(default_factory=list, repr=False)
    new_attempts: list[Attempt] = field(default_factory=list, repr=False)

    # --- what happens to it -----------------------------------------------------------------------

    def deliver_to_inbox(self, now: dt.datetime) -> None:
        """An inbox item is written at once: the delivery is done on its first (and only) attempt."""
        self.new_attempts.append(Attempt(1, now, "delivered", duration_ms=0))
        self.status, self.attempts, self.round_attempts = "delivered", 1, 1
        self.retry_since, self.delivered_at, self.next_attempt_at = now, now, None
        self.events.append(self._outcome(NotificationDelivered, delivered_at=now))

    def record_attempt(self, outcome: Outcome, now: dt.datetime, policy: RetryPolicy,
                       random: Callable[[], float]) -> str:
        """Settle one attempt: delivered, pending again (backoff), or failed for good. Returns the status."""
        self.attempts += 1
        self.round_attempts += 1
        self.retry_since = self.retry_since or now
        self.new_attempts.append(Attempt(self.attempts, now, outcome.label, outcome.status_code, outcome.error,
                                         outcome.duration_ms))
        settlement = settle(outcome, retry_since=self.retry_since, failures=self.round_attempts, now=now,
                            policy=policy, random=random)
        self.status, self.next_attempt_at = settlement.status, settlement.next_attempt_at
        if settlement.status == "delivered":
            self.delivered_at, self.last_error = now, None
            self.events.append(self._outcome(NotificationDelivered, delivered_at=now))
        else:
            self.last_error = outcome.error
        if settlement.status == "failed":
            self.failed_at = now
            self.events.append(self._outcome(NotificationFailed, failed_at=now, error=outcome.error))
        return settlement.status

    def release(self, now: dt.datetime) -> None:
        """Give back a claim the send pass had no time to use: due again at once, no attempt counted."""
        self.status, self.next_attempt_at = "pending", now

    def redeliver(self, now: dt.datetime, endpoint_active: bool = True) -> None:
        """Send again: the attempts go on in the same log, with a fresh retry horizon."""
        if self.channel == "inbox":
            raise Conflict("An in-app notification stays in the inbox; there is nothing to send again.")
        if self.status in ("pending", "sending"):
            raise Conflict(f"Delivery {self.id} is already on its way (status {self.status}).")
        if self.channel == "webhook" and not endpoint_active:
            raise Conflict("The webhook endpoint is disabled; enable it before redelivering.")
        self.status, self.next_attempt_at, self.retry_since, self.round_attempts = "pending", now, now, 0
        self.failed_at, self.last_error = None, None

    def _outcome(self, cls, **extra) -> EventPayload:
        return cls(contract_id=self.contract_id, org=self.org, delivery_id=self.id,
                   subscription_id=self.subscription_id, source_event_id=self.event_id,
                   source_event_type=self.event_type, channel=self.channel, recipient=self.recipient,
                   attempts=self.attempts, **extra)
