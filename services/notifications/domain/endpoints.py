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
from dataclasses import dataclass
from urllib.parse import urlsplit


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
    return parts.hostname


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
