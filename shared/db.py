"""Database engines and sessions.

SQLite (the embedded default) gets WAL and a busy timeout; write transactions take the
write lock up front (BEGIN IMMEDIATE) so two threads never deadlock upgrading a read lock.
PostgreSQL needs nothing special.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@dataclass
class Database:
    """The engines of one service: `writer` for units of work, `reader` for queries."""
    url: str
    writer: Engine
    reader: Engine

    @classmethod
    def connect(cls, url: str) -> "Database":
        url = normalise_url(url)
        if is_sqlite(url):
            return cls(url, _sqlite_engine(url, immediate=True), _sqlite_engine(url, immediate=False))
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        return cls(url, engine, engine)

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    def write_session(self) -> Session:
        return sessionmaker(self.writer, expire_on_commit=False)()

    def read_session(self) -> Session:
        return sessionmaker(self.reader, expire_on_commit=False)()

    def ping(self) -> None:
        with self.reader.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()
