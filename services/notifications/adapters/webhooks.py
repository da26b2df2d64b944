"""Webhook calls over httpcore, with the SSRF rules of domain/endpoints.py enforced at connect time.

The host name is resolved once per call, every address is checked, and the request goes to
the checked address itself (the Host header and TLS server name stay the original name, in its
ASCII form, so certificates are verified as usual). A name that re-resolves to a private address
between the check and the connection (DNS rebinding) therefore cannot steer us there. Redirects
are not followed: a redirect to an internal address would be the same hole.

A call has one total deadline, not a timeout per socket operation: every connect, write and
read gets only what is left of it, so a server dripping a byte at a time cannot hold the sender
(and the scheduler lease it runs under). At most `MAX_RESPONSE_BYTES` of an error body is
read; a success is known from its status line, and the rest of the answer is never read.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from services.notifications.domain import signing
from services.notifications.domain.attempts import Outcome
from services.notifications.domain.endpoints import Refused, check_addresses, check_url

Resolver = Callable[[str, int], list[str]]
MAX_RESPONSE_BYTES = 16 * 1024     # of an error answer: enough for its message, never a receiver's whole page
BACKSTOP_GRACE_S = 0.25            # after the deadline, the socket itself is shut (see DeadlineBackend)


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"{host} does not resolve: {getattr(exc, 'strerror', None) or exc}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


class WebhookSender:
    def __init__(self, settings, resolver: Resolver = resolve):
        self.settings, self.resolver = settings, resolver
        self._tls: ssl.SSLContext | None = None

    def check(self, url: str) -> None:
        """Refused unless `url` may be registered (scheme, host, and where its name resolves now)."""
        self._target(url)

    def _target(self, url: str) -> tuple[str, str, str]:
        """(url to connect to, Host header, TLS server name), all ASCII."""
        host = check_url(url, production=self.settings.production)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = check_addresses(host, self.resolver(host, port),
                                    allow_private=self.settings.allow_private_webhooks)
        address = addresses[0]
        literal = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        name = f"[{host}]" if ":" in host else host
        host_header = name if parts.port is None else f"{name}:{parts.port}"
        return pinned, host_header, host

    def send(self, url: str, secret: str, message_id: str, body: bytes, deadline: float | None = None) -> Outcome:
        """One attempt, finished by `deadline` (time.monotonic()) or the webhook timeout, whichever is first."""
        tls = self.tls if url.lower().startswith("https:") else None     # loading CA certificates is no part of a call
        started = time.monotonic()
        until = started + self.settings.webhook_timeout_s
        until = min(until, deadline) if deadline is not None else until
        try:
            pinned, host_header, server_name = self._target(url)
        except Refused as exc:
            return Outcome(False, error=f"refused: {exc}", refused=True)
        headers = self._headers(host_header, secret, message_id, body)
        try:
            status, text = self._post(pinned, headers, body, server_name, until, tls)
        except Exception as exc:     # timeouts, resets, TLS, protocol errors: this attempt failed, retry later
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:1000], duration_ms=_ms(started))
        if 200 <= status < 300:
            return Outcome(True, status, duration_ms=_ms(started))
        return Outcome(False, status, f"HTTP {status}: {text[:300]}", duration_ms=_ms(started))

    def _headers(self, host_header: str, secret: str, message_id: str, body: bytes) -> list[tuple[bytes, bytes]]:
        signed = signing.headers(secret, message_id, int(time.time()), body)
        headers = {"host": host_header, "content-type": "application/cloudevents+json; charset=utf-8",
                   "content-length": str(len(body)), "user-agent": "Qiyue-Webhooks/1", **signed}
        return [(k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()]

    def _post(self, url: str, headers, body: bytes, server_name: str, until: float,
              tls: ssl.SSLContext | None) -> tuple[int, str]:
        """(status, the start of an error body); raises when the deadline passes first."""
        left = _left(until, httpcore.ConnectTimeout)
        timeouts = {"connect": left, "read": left, "write": left, "pool": left}
        backend = DeadlineBackend(until)
        try:
            with httpcore.ConnectionPool(ssl_context=tls, retries=0, max_connections=1,
                                         network_backend=backend) as pool:
                with pool.stream("POST", url, headers=headers, content=body,
                                 extensions={"timeout": timeouts, "sni_hostname": server_name}) as response:
                    if 200 <= response.status < 300:
                        return response.status, ""      # closed unread: a success needs no body
                    return response.status, _capped(response.iter_stream(), self.max_response_bytes).decode(
                        "utf-8", "replace")
        finally:
            backend.disarm()

    @property
    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    max_response_bytes = MAX_RESPONSE_BYTES


def _capped(chunks: Iterable[bytes], limit: int) -> bytes:
    """At most `limit` bytes of a body; the rest is never read (the connection is closed instead)."""
    read = bytearray()
    for chunk in chunks:
        read += chunk[:limit - len(read)]
        if len(read) >= limit:
            break
    return bytes(read)


def _left(until: float, timeout_error: type[Exception]) -> float:
    left = until - time.monotonic()
    if left <= 0:
        raise timeout_error("the webhook call's deadline passed")
    return left


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation waits at most until the call's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, until: float):
        self.stream, self.until = stream, until

    def _timeout(self, timeout: float | None, error: type[Exception]) -> float:
        left = _left(self.until, error)
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self._timeout(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self._timeout(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        upgraded = self.stream.start_tls(ssl_context, server_hostname, self._timeout(timeout, httpcore.ConnectTimeout))
        return DeadlineStream(upgraded, self.until)

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)


class DeadlineBackend(httpcore.SyncBackend):
    """Connections bounded by the deadline, with a backstop: the TLS handshake is several reads
    under one socket timeout, so shortly after the deadline the socket is shut down, which ends
    any read still waiting."""

    def __init__(self, until: float):
        self.until, self.alarms = until, []

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        left = _left(self.until, httpcore.ConnectTimeout)
        stream = super().connect_tcp(host, port, left if timeout is None else min(timeout, left), local_address,
                                     socket_options)
        alarm = threading.Timer(left + BACKSTOP_GRACE_S, _shut, (stream.get_extra_info("socket"),))
        alarm.daemon = True
        alarm.start()
        self.alarms.append(alarm)
        return DeadlineStream(stream, self.until)

    def disarm(self) -> None:
        for alarm in self.alarms:
            alarm.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass        # closed already


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
