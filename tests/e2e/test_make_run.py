"""`make run` (= `qiyue dev`): broker and all four services ready, a clean Ctrl-C, and a
second run that keeps the data. Runs on shifted ports and its own var/ so it never meets a real `make run`."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import httpx
import pytest

from shared.broker import port_open
from shared import registry
from shared.settings import ROOT
from tests.helpers import wait_until

READY_DEADLINE_S = 180


def _free_offset() -> int:
    # Below the ephemeral range (32768+), where other tests' free ports and client sockets come from:
    # a block chosen there could be taken by one of them before `qiyue dev` binds it.
    for _ in range(50):
        offset = random.randrange(10000, 23000, 10)
        if not any(port_open(p + offset) for p in (9092, *registry.ports().values())):
            return offset
    pytest.skip("no free block of ports")


def _start(var_dir, offset: int) -> subprocess.Popen:
    env = {**os.environ, "QIYUE_VAR_DIR": str(var_dir)}
    for key in [k for k in env if k.startswith("QIYUE_") and k.endswith("DATABASE_URL")]:
        del env[key]
    return subprocess.Popen([sys.executable, "-u", "-m", "shared.cli", "dev", "--port-offset", str(offset)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _all_ready(offset: int) -> bool:
    try:
        return all(httpx.get(f"http://127.0.0.1:{p + offset}/readyz", timeout=2).status_code == 200
                   for p in registry.ports().values())
    except httpx.HTTPError:
        return False


def _diagnosis(proc: subprocess.Popen, var_dir) -> str:
    """What `qiyue dev` printed and the end of each service's log, for a failure to read."""
    out = proc.communicate(timeout=30)[0] if proc.stdout else ""
    logs = {p.name: p.read_text(errors="replace")[-1500:] for p in sorted((var_dir / "logs").glob("*.log"))}
    return "qiyue dev said:\n" + out + "".join(f"\n--- {name}\n{text}" for name, text in logs.items())


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return out


def test_make_run_gets_ready_stops_cleanly_and_keeps_data(tmp_path):
    offset = _free_offset()
    proc = _start(tmp_path, offset)
    try:
        # A deadline for the condition, not a figure: how fast it starts is for bench/, and a busy
        # machine may take several times longer than an idle one.
        wait_until(lambda: _all_ready(offset), READY_DEADLINE_S, interval=0.3, message="all four /readyz answer 200")
    except AssertionError as exc:
        proc.kill()
        raise AssertionError(f"{exc}\n{_diagnosis(proc, tmp_path)}") from None
    out = _stop(proc)
    assert proc.returncode == 0, out
    for name, port in registry.ports().items():
        assert f"http://127.0.0.1:{port + offset}" in out, out
    assert "QIYUE_TOKEN=" in out and "stopped" in out
    databases = {p.name: p.stat().st_size for p in tmp_path.glob("*.db")}
    assert set(databases) == {f"{s}.db" for s in registry.ports()}
    secret = (tmp_path / "dev-jwt-secret").read_text()

    proc = _start(tmp_path, offset)       # a second run keeps the data and the development secret
    try:
        wait_until(lambda: _all_ready(offset), READY_DEADLINE_S, interval=0.3, message="ready again")
    finally:
        out = _stop(proc)
    assert {p.name for p in tmp_path.glob("*.db")} == set(databases)
    assert (tmp_path / "dev-jwt-secret").read_text() == secret
