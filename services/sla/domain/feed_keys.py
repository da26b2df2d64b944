"""Feed keys: what binds a record on `sla.ingest` to one organisation.

An organisation's admin creates a key; its feed signs each record with HMAC-SHA256 over the record's value
(`shared.events.sla.sign_feed_record`). The service takes the organisation from the key, never from the
payload. The secret is not stored anywhere: it is derived from the service's master secret and the key
id, so the key table holds nothing a reader of the database could sign with. The trade-off: whoever holds
the master secret can sign for every key, and changing the master secret invalidates every key at once.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Mapping

from shared.events.sla import FEED_KEY_HEADER, FEED_SIGNATURE_HEADER, feed_signature


@dataclass(frozen=True)
class FeedKey:
    key_id: str
    org: str
    name: str
    created_by: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


def secret_of(master: bytes, key_id: str) -> str:
    """The key's secret, the same on every replica that shares the master secret."""
    digest = hmac.new(master, b"qiyue-sla-feed-key/v1/" + key_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signer_of(headers: Mapping[str, str], value: bytes | None,
              keys: Mapping[str, tuple[str, str]]) -> tuple[str | None, str | None]:
    """(the signing key's organisation, None) when the record is signed by one of the active `keys`
    ({key id: (organisation, secret)}); else (None, why)."""
    key_id, signature = headers.get(FEED_KEY_HEADER), headers.get(FEED_SIGNATURE_HEADER)
    if not key_id or not signature:
        return None, f"unsigned: a feed record needs the {FEED_KEY_HEADER} and {FEED_SIGNATURE_HEADER} headers"
    if key_id not in keys:
        return None, f"feed key {key_id[:40]!r} is unknown or revoked"
    org, secret = keys[key_id]
    if not hmac.compare_digest(signature, feed_signature(secret, value or b"")):
        return None, f"the signature does not match the record under feed key {key_id}"
    return org, None
