"""Helpers shared by the suite: waiting on conditions, tokens, service instances."""
from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable

from shared.auth import issue_token

TEST_SECRET = "test-secret-" + uuid.uuid4().hex   # generated per run: no secret in the repo


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, message: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except AssertionError as exc:  # a condition may assert; keep waiting until the deadline
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {message}" + (f" ({last_error})" if last_error else ""))


def token(*roles: str, org: str = "acme", sub: str = "user-1", party: str | None = None) -> str:
    return issue_token(TEST_SECRET, sub, org, roles or ("viewer",), party=party)


def auth(*roles: str, org: str = "acme", sub: str = "user-1", party: str | None = None) -> dict[str, str]:
    """A bearer header; `party` is a counterparty's company (the vendor's credit code)."""
    return {"Authorization": f"Bearer {token(*roles, org=org, sub=sub, party=party)}"}


@contextmanager
def served(app):
    """The app behind a real uvicorn server on a free local port (for browsers and streaming clients)."""
    import uvicorn

    from shared.broker import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, message="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def stream_token(base: str, *roles: str, org: str = "acme", sub: str = "user-1") -> str:
    """A stream token minted over HTTP by the SLA service at `base` (the only token a URL may carry)."""
    import httpx

    response = httpx.post(f"{base}/v1/stream-tokens", headers=auth(*roles, org=org, sub=sub))
    assert response.status_code == 201, response.text
    return response.json()["token"]
