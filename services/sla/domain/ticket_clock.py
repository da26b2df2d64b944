"""The clock of one ticket against one timer (first response or resolution).

The clock is a pure function of the ticket's recorded events, sorted by their own time, so an
event that arrives late simply takes its place and the reading is computed again. It never
reads "now": it yields the instants at which thresholds are (or were) crossed, and the caller
schedules timers at those instants.

- It starts when the ticket is opened.
- It pauses while the ticket waits on the customer (if the metric says so) and runs again on resume.
- First response stops at the first response (or at resolution, which answers too); resolution stops at resolution.
- On reopen, a metric that restarts begins a new cycle from zero; otherwise resolution runs on from
  where it stopped (the time the ticket spent resolved does not count).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Literal

from services.sla.domain.compliance import TicketStanding
from services.sla.domain.time_basis import TimeBasis

# Events at the same instant are applied in the order a ticket lives them.
_ORDER = {"opened": 0, "reopened": 1, "resumed": 2, "first_response": 3, "paused": 4, "resolved": 5}

ClockState = Literal["not_started", "running", "paused", "stopped"]


@dataclass(frozen=True)
class TicketEvent:
    kind: str
    at: dt.datetime
    priority: str | None = None
    seq: int = 0                    # arrival order, the last tie-breaker

    def sort_key(self):
        return self.at, _ORDER.get(self.kind, 9), self.seq


@dataclass
class Cycle:
    """One run of the clock from (re)start to stop; `spans` are the stretches it was running."""
    number: int
    started_at: dt.datetime
    spans: list[list] = field(default_factory=list)     # [start, end | None]
    stopped_at: dt.datetime | None = None

    @property
    def running(self) -> bool:
        return bool(self.spans) and self.spans[-1][1] is None

    def run_from(self, at: dt.datetime) -> None:
        if not self.running:
            self.spans.append([at, None])

    def halt_at(self, at: dt.datetime) -> None:
        if self.running:
            self.spans[-1][1] = max(at, self.spans[-1][0])

    def elapsed(self, basis: TimeBasis, until: dt.datetime | None = None) -> dt.timedelta:
        """Counted time; a running span counts up to `until` (nothing when not given)."""
        total = dt.timedelta(0)
        for start, end in self.spans:
            end = end if end is not None else until
            if end is not None and end > start:
                total += basis.business_time_between(start, end)
        return total

    def crossing(self, basis: TimeBasis, threshold: dt.timedelta, strict: bool) -> dt.datetime | None:
        """The instant counted time reached `threshold` (strict: went beyond it), past or future."""
        used = dt.timedelta(0)
        for start, end in self.spans:
            if end is None:
                return basis.add_business_time(start, threshold - used)
            span = basis.business_time_between(start, end)
            if used + span > threshold or (not strict and used + span == threshold):
                return basis.add_business_time(start, threshold - used)
            used += span
        return None


@dataclass(frozen=True)
class TimerPlan:
    kind: Literal["at_risk", "breach"]
    cycle: int
    due_at: dt.datetime


@dataclass(frozen=True)
class ClockReading:
    state: ClockState
    cycles: tuple[Cycle, ...]
    allowed: dt.timedelta
    deadline: dt.datetime | None          # current cycle, while running
    at_risk_at: dt.datetime | None        # current cycle's threshold instant
    breached_at: dt.datetime | None       # the first deadline that passed (or will, if running)
    timers: tuple[TimerPlan, ...]

    @property
    def opened_at(self) -> dt.datetime | None:
        return self.cycles[0].started_at if self.cycles else None

    @property
    def cycle(self) -> int:
        return self.cycles[-1].number if self.cycles else 0

    @property
    def running_since(self) -> dt.datetime | None:
        return self.cycles[-1].spans[-1][0] if self.state == "running" else None

    def elapsed(self, basis: TimeBasis, now: dt.datetime | None = None) -> dt.timedelta:
        """Counted time of the current cycle (its running span up to `now`, if given)."""
        return self.cycles[-1].elapsed(basis, now) if self.cycles else dt.timedelta(0)

    def settled_miss(self, basis: TimeBasis) -> Decimal | None:
        """The worst overrun of the time already counted (spans that have ended), as a share of the time allowed."""
        worst = max((c.elapsed(basis) for c in self.cycles), default=dt.timedelta(0)) - self.allowed
        return _share(worst, self.allowed) if worst > dt.timedelta(0) else None

    def is_breached(self, now: dt.datetime) -> bool:
        return self.breached_at is not None and self.breached_at <= now

    def worst_miss(self, basis: TimeBasis, now: dt.datetime) -> Decimal | None:
        """How far the worst breached cycle overran, as a share of the time allowed (0.5 = 50 % late)."""
        if not self.is_breached(now):
            return None
        return _share(max(c.elapsed(basis, now) for c in self.cycles) - self.allowed, self.allowed)


def _share(over: dt.timedelta, allowed: dt.timedelta) -> Decimal:
    return (Decimal(over.total_seconds()) / Decimal(allowed.total_seconds())).quantize(Decimal("0.000001"))


def ticket_standing(*, state: str, elapsed: dt.timedelta, running_since: dt.datetime | None,
                    at_risk_at: dt.datetime | None, breached_at: dt.datetime | None, settled_miss: Decimal | None,
                    allowed: dt.timedelta, basis: TimeBasis, now: dt.datetime) -> TicketStanding:
    """A stored clock read at `now`: breached once its first deadline has passed, at risk past its threshold."""
    breached = breached_at is not None and breached_at <= now
    at_risk = state in ("running", "paused") and at_risk_at is not None and at_risk_at <= now and not breached
    if not breached:
        return TicketStanding(False, at_risk)
    live = elapsed + (basis.business_time_between(running_since, now) if running_since and now > running_since
                      else dt.timedelta(0))
    misses = [m for m in (settled_miss, _share(live - allowed, allowed) if live > allowed else None) if m is not None]
    return TicketStanding(True, False, max(misses, default=Decimal(0)))


def read_clock(events: Iterable[TicketEvent], kind: str, allowed: dt.timedelta, basis: TimeBasis, *,
               at_risk_share: Decimal = Decimal("0.8"), pause_on_customer_wait: bool = True,
               restart_on_reopen: bool = False) -> ClockReading:
    cycles = _cycles(sorted(events, key=TicketEvent.sort_key), kind, pause_on_customer_wait, restart_on_reopen)
    if not cycles:
        return ClockReading("not_started", (), allowed, None, None, None, ())
    current = cycles[-1]
    state: ClockState = "stopped" if current.stopped_at else "running" if current.running else "paused"
    at_risk_threshold = allowed * float(at_risk_share)
    breaches = [(c.number, c.crossing(basis, allowed, strict=True)) for c in cycles]
    breaches = [(n, at) for n, at in breaches if at is not None]
    timers = [TimerPlan("breach", n, at) for n, at in breaches]
    at_risk_at = current.crossing(basis, at_risk_threshold, strict=False)
    if state == "running" and at_risk_at is not None:
        timers.append(TimerPlan("at_risk", current.number, at_risk_at))
    deadline = current.crossing(basis, allowed, strict=False) if state == "running" else None
    return ClockReading(state, tuple(cycles), allowed, deadline, at_risk_at,
                        min((at for _, at in breaches), default=None), tuple(timers))


def _cycles(events: list[TicketEvent], kind: str, pause: bool, restart: bool) -> list[Cycle]:
    stops = {"first_response", "resolved"} if kind == "first_response" else {"resolved"}
    cycles: list[Cycle] = []
    for event in events:
        current = cycles[-1] if cycles else None
        if event.kind == "opened":
            if current is None:
                cycles.append(Cycle(1, event.at))
                cycles[-1].run_from(event.at)
            continue
        if current is None:
            continue                       # nothing counts before the ticket is opened
        if event.kind == "paused":
            if pause and current.stopped_at is None:
                current.halt_at(event.at)
        elif event.kind == "resumed":
            if current.stopped_at is None:
                current.run_from(event.at)
        elif event.kind in stops:
            if current.stopped_at is None:
                current.halt_at(event.at)
                current.stopped_at = event.at
        elif event.kind == "reopened" and current.stopped_at is not None:
            if restart:
                cycles.append(Cycle(current.number + 1, event.at))
                cycles[-1].run_from(event.at)
            elif kind == "resolution":
                current.stopped_at = None
                current.run_from(event.at)
    return cycles
