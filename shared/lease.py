"""A database lease: at most one replica of a service runs a singleton loop at a time.

The outbox relay holds one so events of one contract leave in commit order; the scheduler
holds one so a job is never run by two replicas at once. Jobs still claim their rows with a
conditional UPDATE, so a lease handed over mid-tick cannot make anything fire twice.
"""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Table, insert, or_, update
from sqlalchemy.exc import IntegrityError

from shared.db import Database
from shared.uow import utcnow


class Lease:
    def __init__(self, db: Database, table: Table, name: str, ttl_s: float = 10.0):
        self.db, self.table, self.name, self.ttl = db, table, name, dt.timedelta(seconds=ttl_s)
        self.holder = uuid.uuid4().hex

    def acquire(self) -> bool:
        """Take or renew the lease; True when this process holds it."""
        t, now = self.table, utcnow()
        with self.db.writer.begin() as conn:
            taken = conn.execute(
                update(t).where(t.c.name == self.name)
                .where(or_(t.c.holder == self.holder, t.c.expires_at < now))
                .values(holder=self.holder, expires_at=now + self.ttl)
            ).rowcount
        if taken:
            return True
        try:
            with self.db.writer.begin() as conn:
                conn.execute(insert(t).values(name=self.name, holder=self.holder, expires_at=now + self.ttl))
            return True
        except IntegrityError:
            return False

    def release(self) -> None:
        t = self.table
        with self.db.writer.begin() as conn:
            conn.execute(update(t).where(t.c.name == self.name, t.c.holder == self.holder)
                         .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
