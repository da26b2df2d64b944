"""Events the notifications service consumes, and what each one does."""
from __future__ import annotations

from shared.kafka import Subscription

subscription: Subscription | None = None
