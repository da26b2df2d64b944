"""Webhook calls against misbehaving receivers: Qiyue's sender (one total deadline, a capped
error body) beside the sender it replaced (an httpx.Client per call, whose timeout applies to
each socket operation, reading the whole answer), in the same run, against the same servers.

    .venv/bin/python -m bench.webhook_faults     # prints the figures and a table
                                                 # and writes bench/results-webhook-faults.json

- `drip`: a server sending its answer one byte every 250 ms (2 s timeout): how long one call is held;
- `endless`: a 500 with a body that never ends (capped here at 64 MiB): time and bytes the server got out;
- `healthy`: p50/p99 of one call to a healthy local receiver (the price of the new transport);
- `pass`: a send pass of 40 webhook deliveries, one of them to an IDN host: how many are settled.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from pathlib import Path
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Response

from bench.harness import latency_figures, machine
from services.notifications.adapters.webhooks import WebhookSender
from services.notifications.domain import signing
from services.notifications.domain.attempts import Outcome
from services.notifications.settings import NotificationSettings
from tests.helpers import served
from tests.integration.test_webhook_faults import FaultyReceiver

SECRET = "whsec_" + "A" * 32


class PerReadTimeoutSender(WebhookSender):
    """The sender before this change: httpx's timeout is per connect/read/write, and `.text` reads it all."""

    def send(self, url, secret, message_id, body, deadline=None) -> Outcome:
        started = time.monotonic()
        pinned, _, server_name = self._target(url)
        headers = {"content-type": "application/cloudevents+json; charset=utf-8",
                   "host": urlsplit(url).netloc,            # as it was: the name as registered, maybe not ASCII
                   **signing.headers(secret, message_id, int(time.time()), body)}
        with httpx.Client(timeout=self.settings.webhook_timeout_s, follow_redirects=False, trust_env=False) as client:
            try:
                response = client.post(pinned, content=body, headers=headers,
                                       extensions={"sni_hostname": server_name})
            except httpx.HTTPError as exc:
                return Outcome(False, error=type(exc).__name__, duration_ms=int((time.monotonic() - started) * 1000))
        return Outcome(200 <= response.status_code < 300, response.status_code, response.text[:300],
                       duration_ms=int((time.monotonic() - started) * 1000))


def settings(**more) -> NotificationSettings:
    return NotificationSettings(environment="test", jwt_secret="bench-" + "x" * 32, allow_private_webhooks=True, **more)


def held(sender: WebhookSender, url: str) -> dict:
    started = time.monotonic()
    outcome = sender.send(url, SECRET, "msg_bench", b"{}")
    return {"held_s": round(time.monotonic() - started, 2), "error": (outcome.error or "")[:40]}


def drip(limit_s: float) -> dict:
    figures = {}
    for name, cls in (("qiyue", WebhookSender), ("per_read_timeout", PerReadTimeoutSender)):
        server = FaultyReceiver("drip")
        stopper = threading.Timer(limit_s, server.stop)     # the old sender would wait as long as bytes come
        stopper.start()
        server_url = server.url()
        _slow_drip(server)
        figures[name] = held(cls(settings(webhook_timeout_s=2.0)), server_url)
        stopper.cancel()
        server.stop()
    return figures


def _slow_drip(server: FaultyReceiver) -> None:
    """A byte every 250 ms: well inside a 2 s per-read timeout, forever."""
    def every_quarter_second(conn):
        for byte in b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"z" * 100_000:
            if server.stopped.wait(0.25):
                return
            conn.sendall(bytes([byte]))
            server.written += 1
    server._drip = every_quarter_second


def endless() -> dict:
    figures = {}
    for name, cls in (("qiyue", WebhookSender), ("per_read_timeout", PerReadTimeoutSender)):
        server = FaultyReceiver("endless")
        out = held(cls(settings(webhook_timeout_s=30.0)), server.url())
        server.stop()
        figures[name] = {**out, "server_wrote_mib": round(server.written / 2**20, 1)}
    return figures


def healthy(n: int) -> dict:
    app = FastAPI()
    app.post("/hook")(lambda: Response(status_code=204))
    figures = {}
    with served(app) as base:
        for name, cls in (("qiyue", WebhookSender), ("per_read_timeout", PerReadTimeoutSender)):
            sender = cls(settings(webhook_timeout_s=5.0))
            samples = []
            for round_ in range(n):
                started = time.monotonic()
                assert sender.send(f"{base}/hook", SECRET, f"msg_{round_}", b"{}").ok
                samples.append(time.monotonic() - started)
            figures[name] = latency_figures(samples, 50, 99)
    return figures


def idn_pass(n: int) -> dict:
    """`n` deliveries sent as the send pass sends them (8 at once); one goes to an IDN host name."""
    from services.notifications.adapters.notifier import Notifier
    from services.notifications.service_layer.outgoing import Outgoing
    from services.notifications.service_layer.sending import send_all
    app = FastAPI()
    app.post("/hook")(lambda: Response(status_code=204))
    figures = {}
    with served(app) as base:
        port = base.rsplit(":", 1)[1]
        receiver = f"{base}/hook"
        urls = [receiver] * (n // 2) + [f"http://bücher.localhost:{port}/hook"] + [receiver] * (n - n // 2 - 1)
        for name, cls in (("qiyue", WebhookSender), ("per_read_timeout", PerReadTimeoutSender)):
            notifier = Notifier(settings(webhook_timeout_s=5.0))
            notifier.webhooks = cls(notifier.settings, resolver=lambda host, port: ["127.0.0.1"])
            outgoing = [Outgoing((f"d{i}",), "webhook", webhook=(url, SECRET, f"msg_{i}", b"{}"))
                        for i, url in enumerate(urls)]
            try:
                (send_all if name == "qiyue" else old_send_all)(notifier, outgoing)
                settled = sum(o.outcome is not None for o in outgoing)
                figures[name] = {"settled": settled, "of": n, "pass": "completed"}
            except Exception as exc:      # nothing is settled: every claim waits to expire, then all go again
                sent = sum(o.outcome is not None for o in outgoing)
                figures[name] = {"settled": 0, "of": n, "pass": f"aborted by {type(exc).__name__}; {sent} already "
                                                                 f"sent go again when their claims expire"}
    return figures


def old_send_all(notifier, outgoing) -> None:
    """The send pass before this change: the first exception out of a send ends the pass."""
    with ThreadPoolExecutor(max_workers=notifier.settings.send_concurrency) as pool:
        for o, outcome in zip(outgoing, pool.map(lambda o: notifier.webhooks.send(*o.webhook), outgoing)):
            o.outcome = outcome


def main() -> None:
    results = {"machine": machine(), "drip": drip(limit_s=12.0), "endless": endless(),
               "healthy": healthy(200), "pass": idn_pass(40)}
    out = Path(__file__).with_name("results-webhook-faults.json")
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, ensure_ascii=False, indent=2))
    d, e, h, p = results["drip"], results["endless"], results["healthy"], results["pass"]
    print("\n| what | Qiyue | per-read timeout (before) |\n|---|---|---|", file=sys.stderr)
    print(f"| drip-fed answer, 2 s timeout: call held | {d['qiyue']['held_s']} s | "
          f"{d['per_read_timeout']['held_s']} s (until the server stopped at 12 s) |", file=sys.stderr)
    print(f"| endless 500 body: call held / server wrote | {e['qiyue']['held_s']} s / "
          f"{e['qiyue']['server_wrote_mib']} MiB | {e['per_read_timeout']['held_s']} s / "
          f"{e['per_read_timeout']['server_wrote_mib']} MiB |", file=sys.stderr)
    print(f"| healthy call p50 / p99 | {h['qiyue']['p50_ms']} / {h['qiyue']['p99_ms']} ms | "
          f"{h['per_read_timeout']['p50_ms']} / {h['per_read_timeout']['p99_ms']} ms |", file=sys.stderr)
    print(f"| pass of {p['qiyue']['of']} with one IDN host | {p['qiyue']['settled']} settled, {p['qiyue']['pass']} | "
          f"{p['per_read_timeout']['settled']} settled, {p['per_read_timeout']['pass']} |", file=sys.stderr)


if __name__ == "__main__":
    main()
