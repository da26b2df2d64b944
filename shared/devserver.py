"""`make run`: the embedded broker and every registered service on the embedded (SQLite) default.

Prints where everything is and a development token; Ctrl-C stops everything cleanly.
Data stays in var/*.db between runs (the broker itself keeps nothing: it is memory-only,
and the outboxes republish nothing twice because consumers are idempotent).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from shared.auth import issue_token
from shared.broker import EmbeddedBroker, port_open
from shared import registry
from shared.settings import settings_for, var_dir

BROKER_PORT = 9092


class _Stop:
    """Ctrl-C or SIGTERM, noticed at any point after start-up began."""
    requested = False

    @classmethod
    def install(cls) -> None:
        def handler(*_):
            cls.requested = True
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def _wait_ready(urls: dict[str, str], timeout: float) -> list[str]:
    deadline, pending = time.monotonic() + timeout, dict(urls)
    while pending and time.monotonic() < deadline and not _Stop.requested:
        for name, url in list(pending.items()):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    return list(pending)


def main(keep_data: bool = True, port_offset: int = 0) -> int:
    _Stop.install()
    logs = var_dir() / "logs"
    logs.mkdir(exist_ok=True)
    if not keep_data:
        for db in var_dir().glob("*.db*"):
            db.unlink()
    broker_port = BROKER_PORT + port_offset
    ports = {name: port + port_offset for name, port in registry.ports().items()}
    broker = None
    if port_open(broker_port):
        print(f"broker: something already listens on 127.0.0.1:{broker_port}; using it")
    else:
        broker = EmbeddedBroker(broker_port, logs / "broker.log").start()
    env = {**os.environ, "QIYUE_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker_port}", "QIYUE_ENVIRONMENT": "development",
           "QIYUE_NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS": "true"}   # development only: webhooks to a local receiver
    procs = {}
    for name, port in ports.items():
        log = open(logs / f"{name}.log", "ab")
        procs[name] = subprocess.Popen([sys.executable, "-m", "shared.cli", "serve", name, "--port", str(port)],
                                       env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    started = time.monotonic()
    not_ready = _wait_ready(urls, 180)
    if not_ready:
        print(f"not ready after 180 s: {', '.join(not_ready)} (see var/logs/)")
    else:
        print(f"all {len(urls)} services ready in {time.monotonic() - started:.1f} s")
    token = issue_token(settings_for(next(iter(urls))).jwt_key(), "dev-legal", "acme",
                        ["legal", "pm", "finance", "approver", "admin"])
    print(f"\nbroker        127.0.0.1:{broker_port} (Tansu, memory only)")
    for name, url in urls.items():
        print(f"{name:<14}{url}   docs {url}/docs")
    for name, service in registry.services().items():
        for label, path in service.links.items():
            print(f"{label:<14}{urls[name]}{path}")
    print(f"databases     {var_dir()}/*.db      logs {logs}/")
    print(f"\ndevelopment token (org acme, all roles):\nexport QIYUE_TOKEN={token}")
    print(f"\ncurl -H \"Authorization: Bearer $QIYUE_TOKEN\" {next(iter(urls.values()))}/v1/templates\n\n"
          "Ctrl-C stops everything.",
          flush=True)
    try:
        while not _Stop.requested:
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                print(f"stopped unexpectedly: {', '.join(dead)} (see var/logs/)")
                break
            time.sleep(0.5)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if broker:
            broker.stop()
        print("stopped", flush=True)
    return 0
