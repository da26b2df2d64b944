"""Webhook calls over httpx, with the SSRF rules of domain/endpoints.py enforced at connect time.

The host name is resolved once per call, every address is checked, and the request goes to
the checked address itself (the Host header and TLS server name stay the original name, so
certificates are verified as usual). A name that re-resolves to a private address between the
check and the connection (DNS rebinding) therefore cannot steer us there. Redirects are not
followed: a redirect to an internal address would be the same hole.
"""
from __future__ import annotations

import socket
import time
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from services.notifications.domain import signing
from services.notifications.domain.attempts import Outcome
from services.notifications.domain.endpoints import Refused, check_addresses, check_url

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"{host} does not resolve: {exc.strerror}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


class WebhookSender:
    def __init__(self, settings, resolver: Resolver = resolve):
        self.settings, self.resolver = settings, resolver

    def check(self, url: str) -> None:
        """Refused unless `url` may be registered (scheme, host, and where its name resolves now)."""
        self._target(url)

    def _target(self, url: str) -> tuple[str, str, str]:
        """(url to connect to, Host header, TLS server name)."""
        host = check_url(url, production=self.settings.production)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = check_addresses(host, self.resolver(host, port),
                                    allow_private=self.settings.allow_private_webhooks)
        address = addresses[0]
        literal = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        return pinned, parts.netloc.rpartition("@")[2], host

    def send(self, url: str, secret: str, message_id: str, body: bytes) -> Outcome:
        started = time.monotonic()
        try:
            pinned, host_header, server_name = self._target(url)
        except Refused as exc:
            return Outcome(False, error=f"refused: {exc}", refused=True)
        timestamp = int(time.time())
        headers = {"content-type": "application/cloudevents+json; charset=utf-8", "host": host_header,
                   "user-agent": "Qiyue-Webhooks/1", **signing.headers(secret, message_id, timestamp, body)}
        try:
            with httpx.Client(timeout=self.settings.webhook_timeout_s, follow_redirects=False, trust_env=False) as client:
                response = client.post(pinned, content=body, headers=headers, extensions={"sni_hostname": server_name})
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:1000], duration_ms=_ms(started))
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code, duration_ms=_ms(started))
        return Outcome(False, response.status_code, f"HTTP {response.status_code}: {response.text[:300]}",
                       duration_ms=_ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

