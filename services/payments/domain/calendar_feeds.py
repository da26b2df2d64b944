"""A user's calendar subscription: a secret URL token, of which only the SHA-256 is kept.

Calendar apps cannot send a bearer token, so the feed's URL carries one instead: 256 random bits,
shown once when the feed is created. Revoking the feed makes its URL answer 404.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from shared.ids import new_id


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class CalendarFeed:
    id: str
    org: str
    owner: str
    name: str
    token_hash: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @classmethod
    def create(cls, org: str, owner: str, name: str, now: dt.datetime) -> tuple["CalendarFeed", str]:
        """A new feed and its secret token (returned once, never stored)."""
        token = secrets.token_urlsafe(32)
        return cls(new_id(), org, owner, name, hash_token(token), now), token

    def revoke(self, now: dt.datetime) -> None:
        """Revoking again keeps the first revocation time."""
        self.revoked_at = self.revoked_at or now
