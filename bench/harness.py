"""What every benchmark needs: percentiles, the machine, the real broker, services behind uvicorn.

Services run as uvicorn processes (`--factory services.<name>.app:create`, settings from `QIYUE_*`
variables, exactly as `make run` and the deployment start them), so the benchmark's own client
never shares an interpreter with the server it measures.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from shared.auth import issue_token
from shared.broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))   # uvicorn workers, the same for a service and its baseline


# --- figures -----------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def latency_figures(samples: list[float], *ps: float) -> dict[str, float]:
    """{"p50_ms": ..., "p99_ms": ...} for the given percentiles of samples in seconds."""
    return {f"p{p:g}_ms": ms(percentile(samples, p)) for p in ps} | {"n": len(samples)}


def machine() -> dict[str, Any]:
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "platform": platform.platform(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} not within {timeout:g}s")


# --- the environment of one run ----------------------------------------------------------------

@dataclass
class Env:
    """One broker, one JWT secret and one scratch directory for the whole run."""
    broker: EmbeddedBroker
    secret: str
    tmp: Path
    quick: bool

    def token(self, *roles: str, org: str = "acme", sub: str = "bench") -> str:
        return issue_token(self.secret, sub, org, roles or ("viewer",))

    def auth(self, *roles: str, org: str = "acme", sub: str = "bench") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, org=org, sub=sub)}"}

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.tmp / (name + '-' + uuid.uuid4().hex[:6] + '.db')}"

    def prefix(self) -> str:
        """A topic prefix of its own for each benchmark: no benchmark reads another's events."""
        return f"b{uuid.uuid4().hex[:8]}."


@contextmanager
def environment(quick: bool) -> Iterator[Env]:
    with tempfile.TemporaryDirectory(prefix="qiyue-bench-") as tmp:
        with EmbeddedBroker(free_port(), Path(tmp) / "broker.log") as broker:
            yield Env(broker, secrets.token_urlsafe(32), Path(tmp), quick)


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from shared.db import normalise_url

    db = f"qiyue_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + db
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


# --- servers -----------------------------------------------------------------------------------

@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path


@contextmanager
def uvicorn_server(factory: str, env: Env, extra_env: dict[str, str] | None = None,
                   ready_path: str = "/healthz") -> Iterator[Server]:
    """`uvicorn --factory <factory>` on a free port with WORKERS workers; the same flags for every app."""
    port = free_port()
    log = env.tmp / f"{factory.replace(':', '_')}-{port}.log"
    variables = {**os.environ, "QIYUE_JWT_SECRET": env.secret, "QIYUE_KAFKA_BOOTSTRAP": env.broker.bootstrap,
                 "QIYUE_LOG_LEVEL": "WARNING", "QIYUE_VAR_DIR": str(env.tmp), "PYTHONPATH": str(ROOT),
                 **(extra_env or {})}
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(WORKERS), "--no-access-log", "--log-level", "warning"]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=variables, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url + ready_path, process, log), 60, f"{factory} to answer")
        yield Server(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _answers(url: str, process: subprocess.Popen, log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()[-2000:]}")
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def service_env(service: str, database_url: str, prefix: str, **more: str) -> dict[str, str]:
    """The `QIYUE_*` settings of one service process."""
    return {"QIYUE_SERVICE": service, "QIYUE_DATABASE_URL": database_url, "QIYUE_TOPIC_PREFIX": prefix,
            "QIYUE_KAFKA_PARTITIONS": "3", **{f"QIYUE_{k.upper()}": v for k, v in more.items()}}


def service(name: str, env: Env, database_url: str, prefix: str, **settings: str):
    """A context manager running service `name` behind uvicorn, ready once its topics exist."""
    return uvicorn_server(f"services.{name}.app:create", env, service_env(name, database_url, prefix, **settings),
                          ready_path="/readyz")
