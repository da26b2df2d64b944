"""Standard Webhooks signatures (https://www.standardwebhooks.com), with the `standardwebhooks` library.

The secret is `whsec_` + base64 of 32 random bytes. The signature is `v1,` +
base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")). Receivers check it and
refuse timestamps outside a tolerance window (five minutes in the reference library), which
stops replays. The library signs and verifies; it has no secret generator, so that is here.
"""
from __future__ import annotations

import base64
import datetime as dt
import secrets

from standardwebhooks import Webhook

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed webhook call; `body` is exactly the bytes sent."""
    at = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    signature = Webhook(secret).sign(message_id, at, body.decode("utf-8"))
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
