"""Fixtures: the real broker (Tansu), real databases (SQLite files and PostgreSQL), real services.

Every test that takes `backend` runs on SQLite and, when it answers, on PostgreSQL
(`QIYUE_TEST_POSTGRES_URL`, default postgresql://postgres@127.0.0.1:5432/postgres).
Each service instance gets its own database and a topic prefix of its own test, so tests never
see each other's events even though they share one broker.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

from shared.broker import EmbeddedBroker, free_port
from shared.db import normalise_url
from shared.settings import Settings
from tests.helpers import TEST_SECRET

# Property tests check what is computed, not how fast: a busy machine must not fail them on
# hypothesis' per-example deadline.
hypothesis_settings.register_profile("qiyue", deadline=None)
hypothesis_settings.load_profile("qiyue")

POSTGRES_URL = os.environ.get("QIYUE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_available() -> bool:
    try:
        engine = create_engine(normalise_url(POSTGRES_URL), connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES = _postgres_available()
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    with EmbeddedBroker(free_port(), tmp_path_factory.mktemp("broker") / "broker.log") as b:
        yield b


class Databases:
    """Creates empty databases for one test and drops them afterwards."""

    def __init__(self, backend: str, tmp_path: Path):
        self.backend, self.tmp_path, self.created = backend, tmp_path, []

    def new(self, name: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_path / (name + '-' + uuid.uuid4().hex[:6] + '.db')}"
        db = f"qiyue_t_{name}_{uuid.uuid4().hex[:10]}"
        admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        admin.dispose()
        self.created.append(db)
        return POSTGRES_URL.rsplit("/", 1)[0] + "/" + db

    def drop_all(self) -> None:
        """Dropping a PostgreSQL database takes seconds; they are all dropped once, after the session."""
        _LEFT_OVER.extend(self.created)
        self.created = []


_LEFT_OVER: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases():
    yield
    if not _LEFT_OVER:
        return
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for db in _LEFT_OVER:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "postgres" and not POSTGRES:
        pytest.skip("PostgreSQL is not reachable at QIYUE_TEST_POSTGRES_URL")
    return request.param


@pytest.fixture
def databases(backend, tmp_path):
    dbs = Databases(backend, tmp_path)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def make_settings(broker, databases, topic_prefix):
    """Settings for one service instance of this test (own database unless `database_url` is given)."""
    def factory(service: str, **overrides) -> Settings:
        values = dict(service=service, environment="test", database_url=databases.new(service),
                      kafka_bootstrap=broker.bootstrap, kafka_partitions=3, topic_prefix=topic_prefix,
                      jwt_secret=TEST_SECRET, scheduler_interval_s=0.2, relay_poll_interval_s=0.2)
        values.update(overrides)
        return Settings(**values)
    return factory


@pytest.fixture
def start_service(make_settings):
    """Start a service in-process (its relay, consumer and scheduler threads run for real)."""
    clients: list[TestClient] = []

    def factory(service: str, **overrides) -> TestClient:
        import importlib

        app = importlib.import_module(f"services.{service}.app").create(make_settings(service, **overrides))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in reversed(clients):
        client.__exit__(None, None, None)


@contextmanager
def running(client: TestClient):
    yield client.app.state.runtime
