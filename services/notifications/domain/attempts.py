"""What an attempt's outcome means for its delivery: delivered, try again later, or failed for good."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Literal

from services.notifications.domain.schedule import RetryPolicy


@dataclass(frozen=True)
class Outcome:
    """How one attempt went, as the sender saw it."""
    ok: bool
    status_code: int | None = None
    error: str | None = None
    refused: bool = False          # we would not make the call at all (SSRF rule, disabled endpoint)
    duration_ms: int = 0

    @property
    def label(self) -> str:
        return "delivered" if self.ok else "refused" if self.refused else "failed"


@dataclass(frozen=True)
class Settlement:
    status: Literal["delivered", "pending", "failed"]
    next_attempt_at: dt.datetime | None = None


def settle(outcome: Outcome, *, retry_since: dt.datetime, failures: int, now: dt.datetime,
           policy: RetryPolicy, random: Callable[[], float]) -> Settlement:
    """`failures`: failed attempts since `retry_since`, this one included.

    A refusal is final at once: the same rule refuses the same call an hour later.
    """
    if outcome.ok:
        return Settlement("delivered")
    if outcome.refused:
        return Settlement("failed")
    when = policy.next_attempt(retry_since, failures, now, random)
    return Settlement("pending", when) if when is not None else Settlement("failed")
