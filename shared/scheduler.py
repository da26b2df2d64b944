"""Scheduled work (deadlines, due dates, expiries) that fires even when no request comes in.

One replica at a time holds the scheduler lease and runs the jobs; each job claims the rows it
acts on with a conditional UPDATE inside its unit of work (`claim`), so even a lease handed over
mid-tick cannot make a timer fire twice. A job may return the next instant it needs to run, so a
deadline fires on time instead of on the next tick.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

from shared.db import Database
from shared.kafka import _Loop
from shared.lease import Lease
from shared.metrics import ServiceMetrics
from shared.uow import UnitOfWork, utcnow

log = logging.getLogger("qiyue.scheduler")

# A job gets a unit-of-work factory and "now"; it returns how many things it did and, optionally,
# when it next wants to run.
JobResult = tuple[int, dt.datetime | None] | int
Job = Callable[[Callable[[], UnitOfWork], dt.datetime], JobResult]


@dataclass
class ScheduledJob:
    name: str
    run: Job


def claim(session: Session, table: Table, row_id, **state) -> bool:
    """Atomically move one row from `expect_<col>=value` to the new values; False if someone else did."""
    expected = {k[len("expect_"):]: v for k, v in state.items() if k.startswith("expect_")}
    values = {k: v for k, v in state.items() if not k.startswith("expect_")}
    stmt = update(table).where(table.c.id == row_id)
    for col, value in expected.items():
        stmt = stmt.where(table.c[col].is_(None) if value is None else table.c[col] == value)
    return session.execute(stmt.values(**values)).rowcount == 1


class Scheduler(_Loop):
    def __init__(self, db: Database, tables: dict[str, Table], service: str, jobs: list[ScheduledJob],
                 uow_factory: Callable[[], UnitOfWork], metrics: ServiceMetrics, interval_s: float = 1.0,
                 clock: Callable[[], dt.datetime] = utcnow):
        super().__init__(f"{service}-scheduler")
        self.jobs, self.uow_factory, self.metrics = jobs, uow_factory, metrics
        self.interval_s, self.clock = interval_s, clock
        self.lease = Lease(db, tables["leases"], f"{service}:scheduler", ttl_s=max(5.0, interval_s * 5))

    def tick(self) -> None:
        next_due: dt.datetime | None = None
        try:
            if self.lease.acquire():
                next_due = self.run_once()
        except Exception:
            log.exception("scheduler tick failed")
        self.wait(self._delay_until(next_due))

    def run_once(self) -> dt.datetime | None:
        earliest = None
        for job in self.jobs:
            try:
                result = job.run(self.uow_factory, self.clock())
            except Exception:
                log.exception("scheduled job %s failed", job.name)
                continue
            done, wanted = (result, None) if isinstance(result, int) else result
            if done:
                self.metrics.timers_fired.labels(job.name).inc(done)
            if wanted is not None and (earliest is None or wanted < earliest):
                earliest = wanted
        return earliest

    def _delay_until(self, when: dt.datetime | None) -> float:
        if when is None:
            return self.interval_s
        return max(0.0, min(self.interval_s, (when - self.clock()).total_seconds()))

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        try:
            self.lease.release()
        except Exception:
            pass
