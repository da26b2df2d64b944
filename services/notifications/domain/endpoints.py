"""Webhook endpoints: which URLs we may call, and when an endpoint that keeps failing is disabled.

A webhook URL is chosen by a customer, so it must not reach into our own network (SSRF):
loopback, private, link-local (cloud metadata at 169.254.169.254), shared, reserved and
multicast addresses are refused, both when the endpoint is registered and at every delivery
(a name may resolve elsewhere later: DNS rebinding). `allow_private` lifts the address rule
for development and tests only. Production also requires https.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import idna

from shared.events.base import EventPayload
from shared.events.notifications import WebhookEndpointDisabled


class Refused(ValueError):
    """A webhook URL or address we will not call."""


def check_url(url: str, *, production: bool) -> str:
    """The URL's host name; raises Refused if the URL itself is unacceptable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("the scheme must be https (or http outside production)")
    if production and parts.scheme != "https":
        raise Refused("webhook endpoints must use https in production")
    if not parts.hostname:
        raise Refused("the URL has no host")
    if parts.username or parts.password:
        raise Refused("credentials in the URL are not allowed; sign with the endpoint secret instead")
    if parts.fragment:
        raise Refused("a fragment is never sent; remove it")
    if port == 0:
        raise Refused("port 0 is not a port")
    return ascii_host(parts.hostname)


def ascii_host(host: str) -> str:
    """The host as it goes on the wire: an internationalised name in its IDNA A-label form
    (`bücher.example` -> `xn--bcher-kva.example`, as browsers map it, UTS #46); Refused if it has none."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except UnicodeError as exc:          # idna.IDNAError is one
        raise Refused(f"{host} is not a valid international host name: {exc}") from None


def address_refusal(address: str) -> str | None:
    """What kind of address this is if we will not connect to it ("a loopback address"); None if public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attribute, reason in (("is_loopback", "a loopback address"), ("is_link_local", "a link-local address"),
                              ("is_unspecified", "an unspecified address"), ("is_multicast", "a multicast address"),
                              ("is_private", "a private address"), ("is_reserved", "a reserved address")):
        if getattr(ip, attribute):
            return reason
    if not ip.is_global:
        return "not a public address"
    return None


def check_addresses(host: str, addresses: list[str], *, allow_private: bool) -> list[str]:
    """The addresses we may connect to; Refused if any one of them is not allowed.

    All must pass: a name answering with one public and one private address could be steered to
    the private one.
    """
    if not addresses:
        raise Refused(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            kind = address_refusal(address)
            if kind:
                raise Refused(f"{address} is {kind}" if host == address else f"{host} resolves to {address}, {kind}")
    return addresses


@dataclass(frozen=True)
class EndpointHealth:
    """How an endpoint has fared since its last success."""
    failing_since: dt.datetime | None = None
    failed_deliveries: int = 0          # consecutive deliveries that failed for good

    def after_success(self) -> "EndpointHealth":
        return EndpointHealth()

    def after_failed_attempt(self, now: dt.datetime) -> "EndpointHealth":
        return EndpointHealth(self.failing_since or now, self.failed_deliveries)

    def after_failed_delivery(self, now: dt.datetime) -> "EndpointHealth":
        return EndpointHealth(self.failing_since or now, self.failed_deliveries + 1)


@dataclass(frozen=True)
class DisablePolicy:
    """An endpoint is disabled once every attempt for `after` failed, or after N failed deliveries in a row."""
    after: dt.timedelta = dt.timedelta(hours=24)
    after_failed_deliveries: int = 5

    def reason(self, health: EndpointHealth, now: dt.datetime) -> str | None:
        if health.failed_deliveries >= self.after_failed_deliveries:
            return f"{health.failed_deliveries} deliveries in a row failed"
        if health.failing_since is not None and now - health.failing_since >= self.after:
            return f"every attempt since {health.failing_since.isoformat(timespec='seconds')} failed"
        return None


@dataclass(eq=False)
class WebhookEndpoint:
    """A registered webhook URL. The secret is kept (we sign with it) but shown only when created.

    Records `webhook_endpoint.disabled` in `events` when it is switched off for failing."""
    id: str
    org: str
    url: str
    secret: str
    created_by: str
    created_at: dt.datetime
    description: str | None = None
    status: str = "active"             # active | disabled
    failing_since: dt.datetime | None = None
    failed_deliveries: int = 0
    disabled_at: dt.datetime | None = None
    disabled_reason: str | None = None
    events: list[EventPayload] = field(default_factory=list, repr=False)

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def health(self) -> EndpointHealth:
        return EndpointHealth(self.failing_since, self.failed_deliveries)

    def after_delivery_status(self, status: str, now: dt.datetime, policy: DisablePolicy) -> str | None:
        """Track how a delivery to it went (`delivered`, `pending` again, `failed`); the reason
        if that got it disabled just now, else None."""
        if status == "delivered":
            health = self.health.after_success()
        elif status == "failed":
            health = self.health.after_failed_delivery(now)
        else:
            health = self.health.after_failed_attempt(now)
        self.failing_since, self.failed_deliveries = health.failing_since, health.failed_deliveries
        reason = policy.reason(health, now)
        if self.active and reason:
            self.disable(reason, now)
            return reason
        return None

    def disable(self, reason: str, now: dt.datetime) -> None:
        self.status, self.disabled_at, self.disabled_reason = "disabled", now, reason[:500]
        self.events.append(WebhookEndpointDisabled(org=self.org, endpoint_id=self.id, url=self.url, reason=reason,
                                                   disabled_at=now))

    def rotate_secret(self, secret: str) -> None:
        """Sign with a new secret from the next send on (the old one, lost or leaked, stops working)."""
        self.secret = secret

    def enable(self) -> None:
        self.status, self.disabled_at, self.disabled_reason = "active", None, None
        self.failing_since, self.failed_deliveries = None, 0
