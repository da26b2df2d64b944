"""Standard Webhooks signatures (https://www.standardwebhooks.com).

The secret is `whsec_` + base64 of random bytes; the key is those bytes. The signature is
`v1,` + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")). Receivers check it
and refuse timestamps outside a tolerance window, which stops replays.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret[len(PREFIX):] if secret.startswith(PREFIX) else secret
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body)}


def verify(secret: str, message_id: str, timestamp: int, body: bytes, signature_header: str) -> bool:
    """True if any `v1,` signature in the (space-separated) header matches."""
    expected = sign(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signature_header.split())
