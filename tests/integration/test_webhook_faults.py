"""One webhook endpoint must not stop everyone: real local receivers that hang, drip their answer
a byte at a time, reset the connection, or answer an endless body, and one reached by an
internationalised host name, beside healthy endpoints of other organisations.

Every call is counted on the receiving side and matched with the attempt log: each healthy
endpoint receives each event exactly once, each bad one is retried and fails on its own, and
no send pass is aborted along the way.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.notifications.adapters.webhooks import WebhookSender, resolve
from services.notifications.settings import NotificationSettings
from tests.helpers import auth, wait_until
from tests.integration.test_notifications_service import notifications, publisher, smtp  # noqa: F401
from tests.integration.test_notifications_webhooks import Receiver, breach, receiver  # noqa: F401

IDN_HOST = "bücher.localhost"
IDN_ASCII = "xn--bcher-kva.localhost"
ORGS = ("acme", "globex", "initech")     # acme has the bad endpoints; the other two are healthy


class FaultyReceiver:
    """A raw TCP server that reads each request and then misbehaves in one way:

    - `hang`: never answers;
    - `drip`: sends its status line and headers one byte every 50 ms, never finishing;
    - `reset`: drops the connection with a TCP reset;
    - `endless`: answers 500 with a body that never ends.

    It notes the `webhook-id` of every request it read, and how many bytes it managed to write.
    """

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.ids: list[str] = []
        self.written = 0
        self.stopped = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name=f"faulty-{behaviour}", daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.server.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.ids.append(_read_request(conn).get("webhook-id", ""))
                getattr(self, "_" + self.behaviour)(conn)
            except OSError:
                pass        # the sender gave up on us and closed: what it should do

    def _hang(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                if conn.recv(1) == b"":
                    return
            except socket.timeout:
                continue

    def _drip(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"z" * 100_000
        for byte in answer:
            if self.stopped.wait(0.05):
                return
            conn.sendall(bytes([byte]))
            self.written += 1

    def _reset(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _endless(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"e" * 64 * 1024)
        while not self.stopped.is_set() and self.written < 256 * 1024 * 1024:
            conn.sendall(chunk)
            self.written += len(chunk)


def _read_request(conn: socket.socket) -> dict[str, str]:
    """The headers of one HTTP request (its body is read and dropped)."""
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("closed before the request ended")
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", 0)):
        body += conn.recv(65536)
    return headers


@pytest.fixture
def faulty():
    started: list[FaultyReceiver] = []

    def start(behaviour: str) -> FaultyReceiver:
        started.append(FaultyReceiver(behaviour))
        return started[-1]
    yield start
    for server in started:
        server.stop()


class Recorded(logging.Handler):
    """Warnings and errors of the scheduler and the send pass (the service replaces the root handlers)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorded():
    handler = Recorded()
    loggers = [logging.getLogger(name) for name in ("qiyue.scheduler", "qiyue.notifications")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def admin(org: str) -> dict:
    return auth("admin", org=org, sub=f"admin-{org}")


def register(client, org: str, url: str) -> dict:
    response = client.post("/v1/webhook-endpoints", json={"url": url}, headers=admin(org))
    assert response.status_code == 201, response.text
    hook = response.json()
    response = client.post("/v1/subscriptions", headers=admin(org), json={
        "event_types": ["sla.breached"], "recipient": {"kind": "webhook", "endpoint_id": hook["id"]}})
    assert response.status_code == 201, response.text
    return hook


def all_deliveries(client, org: str) -> list[dict]:
    response = client.get("/v1/deliveries", params={"limit": 200}, headers=admin(org))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def attempt_log(client, org: str, delivery_id: str) -> list[dict]:
    return client.get(f"/v1/deliveries/{delivery_id}", headers=admin(org)).json()["attempt_log"]


def test_hanging_dripping_resetting_and_idn_endpoints_never_hold_up_anyone_else(
        notifications, publisher, receiver, faulty, recorded):
    client = notifications(allow_private_webhooks=True, webhook_timeout_s=1.0, retry_base_s=0.3, retry_cap_s=0.6,
                           retry_horizon_s=1.5, claim_timeout_s=5, send_concurrency=2)
    webhooks = client.app.state.notifier.webhooks
    webhooks.resolver = lambda host, port: ["127.0.0.1"] if host in (IDN_HOST, IDN_ASCII) else resolve(host, port)
    bad = {kind: faulty(kind) for kind in ("hang", "drip", "reset")}
    hooks = {kind: register(client, "acme", server.url()) for kind, server in bad.items()}
    hooks["idn"] = register(client, "acme", f"http://{IDN_HOST}:{receiver.base.rsplit(':', 1)[1]}/hooks/idn")
    for org in ("globex", "initech"):
        hooks[org] = register(client, org, f"{receiver.base}/hooks/{org}")
    for name in ("idn", "globex", "initech"):
        receiver.secrets[name] = hooks[name]["secret"]

    events = {org: [publisher.publish(breach(period).model_copy(update={"org": org}))
                    for period in ("2026-08", "2026-09", "2026-10")] for org in ORGS}

    def final():
        found = {org: all_deliveries(client, org) for org in ORGS}
        done = all(len(found[org]) == n and all(d["status"] in ("delivered", "failed") for d in found[org])
                   for org, n in (("acme", 12), ("globex", 3), ("initech", 3)))
        return done and found
    found = wait_until(final, 60, message="every delivery settled for good")

    # Healthy endpoints (and the one behind an IDN name): each event exactly once, signed, nothing else.
    by_endpoint = {hook["id"]: name for name, hook in hooks.items()}
    for org, name in (("acme", "idn"), ("globex", "globex"), ("initech", "initech")):
        mine = [d for d in found[org] if by_endpoint[d["recipient"]] == name]
        assert {d["event_id"] for d in mine} == {e.id for e in events[org]}
        assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in mine)
        calls = receiver.of(name)
        assert sorted(c.headers["webhook-id"] for c in calls) == sorted(d["id"] for d in mine)
        assert all(c.verified for c in calls)
    assert {c.headers["host"] for c in receiver.of("idn")} == {f"{IDN_ASCII}:{receiver.base.rsplit(':', 1)[1]}"}

    # The bad ones: retried, then failed, each on its own; every call they saw is an attempt in the log.
    for kind, server in bad.items():
        mine = [d for d in found["acme"] if by_endpoint[d["recipient"]] == kind]
        assert len(mine) == 3 and all(d["status"] == "failed" and d["attempts"] >= 2 for d in mine), mine
        for d in mine:
            log = attempt_log(client, "acme", d["id"])
            assert [a["outcome"] for a in log] == ["failed"] * d["attempts"]
            assert server.ids.count(d["id"]) == d["attempts"]
            if kind in ("hang", "drip"):       # cut by the call's one deadline, not by a timeout per read
                assert all("Timeout" in a["error"] for a in log), log
            else:
                assert all("Timeout" not in a["error"] for a in log), log
        assert len(server.ids) == sum(d["attempts"] for d in mine)

    # Nothing was left claimed, and no pass was aborted or left a delivery unsettled.
    assert not [r for r in recorded.records if r.name == "qiyue.scheduler"], recorded.records
    assert not [r for r in recorded.records if "could not settle" in r.getMessage()]


def sender(**overrides) -> WebhookSender:
    settings = NotificationSettings(environment="test", jwt_secret="x" * 32, allow_private_webhooks=True, **overrides)
    return WebhookSender(settings)


def test_an_endless_error_body_is_read_only_up_to_the_cap_then_the_connection_is_closed(faulty):
    server = faulty("endless")
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(sender(webhook_timeout_s=30).send,
                           server.url(), "whsec_" + "A" * 32, "msg_endless", b"{}")
        wait_until(call.done, 30, message="the call returned")
    outcome = call.result()
    assert (outcome.ok, outcome.status_code) == (False, 500) and outcome.error.startswith("HTTP 500: eeee")
    assert server.written < 64 * 1024 * 1024     # socket buffers hold a few MB; reading it all is 256 MB


def test_a_call_ends_by_the_deadline_it_is_given_even_when_bytes_keep_coming(faulty):
    server = faulty("drip")
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(sender(webhook_timeout_s=60).send, server.url(), "whsec_" + "A" * 32, "msg_drip", b"{}",
                           deadline=time.monotonic() + 0.5)
        wait_until(call.done, 30, message="the call returned")
    outcome = call.result()
    assert not outcome.ok and "Timeout" in outcome.error and server.ids == ["msg_drip"]
    assert 0 < server.written < 100_000       # it was still dripping when we left


def test_an_idn_host_is_called_by_its_ascii_name_and_an_invalid_one_is_refused(notifications, receiver, backend):
    if backend != "sqlite":
        pytest.skip("the rule does not depend on the database")
    client = notifications(run=False, allow_private_webhooks=True)
    client.app.state.notifier.webhooks.resolver = lambda host, port: ["127.0.0.1"]
    response = client.post("/v1/webhook-endpoints", json={"url": "http://☃.example/hook"}, headers=admin("acme"))
    assert response.status_code == 422, response.text
    error, = response.json()["errors"]
    assert error["pointer"] == "/url" and "international host name" in error["detail"]

    port = receiver.base.rsplit(":", 1)[1]
    receiver.secrets["idn"] = "whsec_" + "B" * 32
    outcome = client.app.state.notifier.webhooks.send(f"http://{IDN_HOST}:{port}/hooks/idn", receiver.secrets["idn"],
                                                      "msg_idn", b"{}")
    assert outcome.ok, outcome
    call, = receiver.of("idn")
    assert call.verified and call.headers["host"] == f"{IDN_ASCII}:{port}"
