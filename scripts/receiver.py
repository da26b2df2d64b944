"""A webhook receiver for the demo: a tiny HTTP server on 127.0.0.1 that checks each delivery's
Standard Webhooks signature (`standardwebhooks`) and keeps the events whose signature holds."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


class WebhookReceiver:
    def __init__(self) -> None:
        self.secret: str | None = None    # known once the endpoint is registered (shown once)
        self.verified: list[dict] = []    # the CloudEvents whose signature held
        self.rejected = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/qiyue"

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def types(self) -> set[str]:
        with self._lock:
            return {e.get("type") for e in self.verified}

    def count(self) -> int:
        with self._lock:
            return len(self.verified)

    def _receive(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            if self.secret is None:
                raise WebhookVerificationError("no secret yet")
            Webhook(self.secret).verify(body, headers, json_parse=False)
        except WebhookVerificationError:
            with self._lock:
                self.rejected += 1
            return 401
        with self._lock:
            self.verified.append(json.loads(body))
        return 204

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(receiver._receive(body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):   # quiet: the demo narrates
                pass

        return Handler
