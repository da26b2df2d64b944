"""The sla service's repositories: the only place (with `tables.py` and `views.py`) that speaks SQL.

Every query by contract id also filters by organisation: contract ids are chosen elsewhere, and another
organisation may name one (its feed's input is stored under its own org and never counts for the owner).

Each class takes a session and is hung on `SlaUnitOfWork` (`uow.definitions`, `uow.tickets`, ...).
They load and store; what a number means (standing, credit, what is announced) is decided in the
domain and the service layer.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Iterable, Iterator, Sequence

from sqlalchemy import bindparam, case, delete, false, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.sla.adapters.tables import (DefinitionRow, FeedKeyRow, MetricRow, PeriodRow, SampleRow,
                                          TicketClockRow, TicketEventRow, TimerRow, WindowResultRow)
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.feed_keys import FeedKey
from services.sla.domain.months import Month
from services.sla.domain.standing import WindowStanding
from services.sla.domain.ticket_clock import TicketEvent
from services.sla.domain.timers import Timer
from shared.events.contracts import ServiceHours, SlaMetric
from shared.events.sla import MetricSampleRecorded, TicketEventRecorded
from shared.ids import new_id
from shared.scheduler import claim


def _insert(session: Session, model):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model.__table__)


def executemany(session: Session, statement, rows: list[dict]) -> None:
    """One statement for many rows, handed to the driver's executemany: compiled once, each value through its
    column type's bind processor (what SQLAlchemy does), without its per-row bookkeeping, which costs more
    than the database's own work for a run of thousands of rows."""
    if not rows:
        return
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect, column_keys=list(rows[0]))
    processors = compiled._bind_processors
    names = compiled.positiontup if compiled.positional else list(rows[0])

    def value(row: dict, name: str):
        processor = processors.get(name)
        return processor(row[name]) if processor is not None else row[name]

    if compiled.positional:
        parameters = [tuple(value(row, name) for name in names) for row in rows]
    else:
        parameters = [{name: value(row, name) for name in names} for row in rows]
    connection.exec_driver_sql(str(compiled), parameters)


def insert_ignoring_conflicts(session: Session, model, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a row another transaction already wrote is left as it is.
    One statement for all the rows."""
    executemany(session, _insert(session, model).on_conflict_do_nothing(), rows)


def upsert(session: Session, model, rows: list[dict], keys: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE every other column but the id: one statement for all the rows."""
    if not rows:
        return
    statement = _insert(session, model)
    changed = [c for c in rows[0] if c not in keys and c != "id"]
    executemany(session, statement.on_conflict_do_update(index_elements=list(keys),
                                                         set_={c: statement.excluded[c] for c in changed}), rows)


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def known_sources(session: Session, model, org: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (contract, source id) pairs are already stored: the feeds' own ids make ingestion idempotent."""
    known: set[tuple[str, str]] = set()
    for contract_id in {c for c, _ in keys}:
        sources = sorted({s for c, s in keys if c == contract_id})
        for chunk in chunks(sources, 500):
            known |= {(contract_id, s) for s in session.scalars(select(model.source_id).where(
                model.org == org, model.contract_id == contract_id, model.source_id.in_(chunk))).all()}
    return known


class PendingWrites:
    """Ticket clocks and timers written by a run, held back and sent as one statement per table and kind of
    change (a run of 500 tickets is 3 statements, not 1,500 ORM rows). Every read of those tables writes
    them first, and so does the unit of work before a savepoint, a flush or a commit; `discard` (a rollback)
    forgets what was not written."""

    def __init__(self, session: Session):
        self.session = session
        self.clocks: dict[tuple[str, str, str], dict] = {}     # by (contract, ticket, metric): last reading wins
        self.gone_clocks: list[str] = []
        self.timers: dict[str, tuple[str, Timer]] = {}        # by id: ("add" | "save" | "delete", timer)

    def timer(self, change: str, timer: Timer) -> None:
        before = self.timers.get(timer.id, (None,))[0]
        if before == "add" and change == "delete":
            del self.timers[timer.id]          # never written: nothing to delete
            return
        self.timers[timer.id] = ("add" if before == "add" else change, _copy(timer))

    def write(self) -> None:
        if self.timers:
            changes, self.timers = list(self.timers.values()), {}
            _write_timers(self.session, [t for c, t in changes if c == "add"], [t for c, t in changes if c == "save"],
                          [t for c, t in changes if c == "delete"])
        if self.gone_clocks:
            gone, self.gone_clocks = self.gone_clocks, []
            for chunk in chunks(gone, 500):
                self.session.execute(delete(TicketClockRow.__table__).where(TicketClockRow.__table__.c.id.in_(chunk)))
        if self.clocks:
            readings, self.clocks = list(self.clocks.values()), {}
            upsert(self.session, TicketClockRow, readings, ("contract_id", "ticket_id", "metric_key"))

    def discard(self) -> None:
        self.clocks, self.gone_clocks, self.timers = {}, [], {}


def _copy(timer: Timer) -> Timer:
    return Timer(id=timer.id, **{name: getattr(timer, name) for name in _TIMER_FIELDS})


class _Repository:
    def __init__(self, session: Session, pending: PendingWrites | None = None):
        self.session = session
        self.pending = pending or PendingWrites(session)

    def flush(self) -> None:
        self.pending.write()
        self.session.flush()


# --- definitions ---------------------------------------------------------------------------------

def _to_domain(row: DefinitionRow, metrics: Iterable[MetricRow]) -> SlaDefinition:
    return SlaDefinition(
        contract_id=row.contract_id, org=row.org, contract_version=row.contract_version, number=row.number,
        title=row.title, currency=row.currency, monthly_fee=row.monthly_fee, effective_date=row.effective_date,
        end_date=row.end_date, service_hours=ServiceHours.model_validate(row.service_hours),
        credit_cap_share=row.credit_cap_share,
        metrics=tuple(MetricDefinition(SlaMetric.model_validate(m.terms), m.contract_version)
                      for m in sorted(metrics, key=lambda m: m.position)),
        vendor_party=row.vendor_party,
    )


class DefinitionRepository(_Repository):
    def get(self, org: str, contract_id: str) -> SlaDefinition | None:
        """The definition of a contract of `org` (another organisation's contract is not found)."""
        row = self.session.get(DefinitionRow, contract_id)
        if row is None or row.org != org:
            return None
        metrics = self.session.scalars(select(MetricRow).where(MetricRow.org == org,
                                                               MetricRow.contract_id == contract_id)).all()
        return _to_domain(row, metrics)

    def taken(self, contract_id: str) -> bool:
        """Whether any organisation holds this contract id (only to refuse reusing it)."""
        return self.session.get(DefinitionRow, contract_id) is not None

    def get_many(self, org: str, contract_ids: Iterable[str]) -> dict[str, SlaDefinition]:
        ids = sorted(set(contract_ids))
        rows = self.session.scalars(select(DefinitionRow).where(DefinitionRow.org == org,
                                                                DefinitionRow.contract_id.in_(ids))).all()
        metrics = self.session.scalars(select(MetricRow).where(
            MetricRow.org == org, MetricRow.contract_id.in_(ids))).all() if rows else []
        return {r.contract_id: _to_domain(r, [m for m in metrics if m.contract_id == r.contract_id]) for r in rows}

    def vendor_party(self, org: str, contract_id: str) -> str | None:
        """The contract's vendor party (None: no definition, or none named)."""
        return self.session.scalar(select(DefinitionRow.vendor_party).where(
            DefinitionRow.contract_id == contract_id, DefinitionRow.org == org))

    def of_parties(self, org: str, contract_ids: Iterable[str], parties: tuple[str, ...]) -> set[str]:
        """Those of `contract_ids` whose vendor party is one of `parties`."""
        if not parties:
            return set()
        return set(self.session.scalars(select(DefinitionRow.contract_id).where(
            DefinitionRow.org == org, DefinitionRow.contract_id.in_(sorted(set(contract_ids))),
            DefinitionRow.vendor_party.in_(parties))))

    def list(self, org: str, after: str | None, limit: int,
             parties: tuple[str, ...] | None = None) -> list[SlaDefinition]:
        """By contract id; `parties` keeps only those vendor parties' (a counterparty's view; () none)."""
        query = select(DefinitionRow).where(DefinitionRow.org == org).order_by(DefinitionRow.contract_id).limit(limit)
        if parties is not None:
            query = query.where(DefinitionRow.vendor_party.in_(parties) if parties else false())
        if after:
            query = query.where(DefinitionRow.contract_id > after)
        rows = self.session.scalars(query).all()
        return list(self.get_many(org, [r.contract_id for r in rows]).values()) if rows else []

    def save(self, definition: SlaDefinition, now: dt.datetime) -> None:
        session = self.session
        row = session.get(DefinitionRow, definition.contract_id)
        values = dict(org=definition.org, contract_version=definition.contract_version, number=definition.number,
                      title=definition.title, currency=definition.currency, monthly_fee=definition.monthly_fee,
                      effective_date=definition.effective_date, end_date=definition.end_date,
                      service_hours=definition.service_hours.model_dump(mode="json"),
                      credit_cap_share=definition.credit_cap_share, vendor_party=definition.vendor_party,
                      updated_at=now)
        if row is None:
            session.add(DefinitionRow(contract_id=definition.contract_id, created_at=now, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
        session.execute(delete(MetricRow).where(MetricRow.org == definition.org,
                                                MetricRow.contract_id == definition.contract_id))
        session.flush()
        for position, metric in enumerate(definition.metrics):
            session.add(MetricRow(id=new_id(), org=definition.org, contract_id=definition.contract_id,
                                  key=metric.key, kind=metric.kind, priority=metric.terms.priority,
                                  clause_key=metric.terms.clause_key, contract_version=metric.contract_version,
                                  position=position, terms=metric.terms.model_dump(mode="json")))
        session.flush()


# --- tickets -------------------------------------------------------------------------------------

class TicketRepository(_Repository):
    """Ticket events as the feeds sent them, and the clocks read from them (one per ticket and timer metric)."""

    def known_sources(self, org: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        return known_sources(self.session, TicketEventRow, org, keys)

    def add_events(self, org: str, events: Sequence[TicketEventRecorded], now: dt.datetime) -> None:
        insert_ignoring_conflicts(self.session, TicketEventRow, [dict(
            org=org, contract_id=e.contract_id, ticket_id=e.ticket_id, source_id=e.source_id, kind=e.kind, at=e.at,
            priority=e.priority, received_at=now) for e in events])

    def load(self, org: str, contract_id: str, ticket_ids: Sequence[str], timer_metrics: Sequence[str]):
        """Events, clocks and timers of many tickets in three queries (a batch may hold thousands), as plain
        rows: no ORM objects to build or to keep in step with the bulk writes."""
        self.pending.write()
        session = self.session
        events: dict[str, list[TicketEvent]] = defaultdict(list)
        e = TicketEventRow.__table__.c
        for r in session.execute(select(e.ticket_id, e.kind, e.at, e.priority, e.id).where(
                e.org == org, e.contract_id == contract_id, e.ticket_id.in_(ticket_ids))):
            events[r.ticket_id].append(TicketEvent(r.kind, r.at, r.priority, r.id))
        clocks: dict[str, dict] = defaultdict(dict)
        c = TicketClockRow.__table__.c
        for row in session.execute(select(TicketClockRow.__table__).where(c.org == org, c.contract_id == contract_id,
                                                                          c.ticket_id.in_(ticket_ids))):
            clocks[row.ticket_id][row.metric_key] = row
        timers: dict[tuple[str, str], list[Timer]] = defaultdict(list)
        t = TimerRow.__table__.c
        for row in session.execute(select(TimerRow.__table__).where(t.org == org, t.contract_id == contract_id,
                                                                    t.metric_key.in_(timer_metrics),
                                                                    t.subject.in_(ticket_ids))):
            timers[(row.metric_key, row.subject)].append(_timer(row))
        return events, clocks, timers

    def save_clock(self, row, **values) -> None:
        """Store a clock's reading (`row` None: the ticket's first for this metric); written with the run's others."""
        key = (values["contract_id"], values["ticket_id"], values["metric_key"])
        self.pending.clocks[key] = dict(id=row.id if row is not None else new_id(), **values)

    def delete_clock(self, row) -> None:
        self.pending.clocks.pop((row.contract_id, row.ticket_id, row.metric_key), None)
        self.pending.gone_clocks.append(row.id)

    def delete_clocks(self, org: str, contract_id: str, metric_key: str, periods: Sequence[str]) -> None:
        self.pending.write()
        self.session.execute(delete(TicketClockRow).where(
            TicketClockRow.org == org, TicketClockRow.contract_id == contract_id, TicketClockRow.metric_key == metric_key,
            TicketClockRow.period.in_(periods)))

    def clock_states(self, org: str, contract_id: str) -> list[tuple[str, str, str]]:
        """(ticket, state, period) of every clock of the contract."""
        self.pending.write()
        return [tuple(r) for r in self.session.execute(
            select(TicketClockRow.ticket_id, TicketClockRow.state, TicketClockRow.period)
            .where(TicketClockRow.org == org, TicketClockRow.contract_id == contract_id)).all()]

    def ticket_ids(self, org: str, contract_id: str) -> set[str]:
        return set(self.session.scalars(select(TicketEventRow.ticket_id).distinct().where(
            TicketEventRow.org == org, TicketEventRow.contract_id == contract_id)).all())


# --- what a window is measured from (read only: the use cases and the views both read it) ----------

class WindowFacts(_Repository):
    """The counting queries behind a window's standing (`domain.measurement.WindowFacts`)."""

    def ticket_window(self, org: str, contract_id: str, metric_key: str, period: str, now: dt.datetime):
        """(clocks, of them at risk, the breached clocks): counted in SQL, only the breached clocks are loaded,
        so the cost does not grow with the tickets the month holds."""
        self.pending.write()
        in_window = (TicketClockRow.org == org, TicketClockRow.contract_id == contract_id, TicketClockRow.metric_key == metric_key,
                     TicketClockRow.period == period)
        breached = TicketClockRow.breached_at.is_not(None) & (TicketClockRow.breached_at <= now)
        at_risk = (TicketClockRow.state.in_(("running", "paused")) & TicketClockRow.at_risk_at.is_not(None)
                   & (TicketClockRow.at_risk_at <= now) & ~breached)
        items, risky = self.session.execute(select(
            func.count(), func.coalesce(func.sum(case((at_risk, 1), else_=0)), 0)).where(*in_window)).one()
        return int(items), int(risky), list(self.session.execute(select(TicketClockRow.__table__).where(
            *in_window, breached)))

    def sample_sums(self, org: str, contract_id: str, metric_key: str, sample_kind: str, start: dt.datetime,
                    end: dt.datetime) -> tuple:
        """(offered, answered within threshold, abandoned, responses, score sum, contacts, resolved first)."""
        return tuple(self.session.execute(select(
            func.coalesce(func.sum(SampleRow.offered), 0),
            func.coalesce(func.sum(SampleRow.answered_within_threshold), 0),
            func.coalesce(func.sum(SampleRow.abandoned), 0), func.coalesce(func.sum(SampleRow.responses), 0),
            func.coalesce(func.sum(SampleRow.score_sum), 0), func.coalesce(func.sum(SampleRow.contacts), 0),
            func.coalesce(func.sum(SampleRow.resolved_first_contact), 0),
        ).where(*_samples_of(org, contract_id, metric_key, sample_kind), SampleRow.start >= start,
                SampleRow.start < end)).one())

    def availability(self, org: str, contract_id: str, metric_key: str, start: dt.datetime, end: dt.datetime
                     ) -> list[tuple[dt.datetime, dt.datetime | None, str]]:
        """(start, end, state) of the availability samples reaching into [start, end); an outage with no end
        ends at the first `up` reported after it began (None while there is none)."""
        rows = self.session.execute(select(SampleRow.start, SampleRow.end, SampleRow.state).where(
            *_samples_of(org, contract_id, metric_key, "availability"), SampleRow.start < end,
            (SampleRow.end > start) | SampleRow.end.is_(None))).all()
        return [(s, e or (self._first_up(org, contract_id, metric_key, s) if state == "down" else None), state)
                for s, e, state in rows]

    def _first_up(self, org: str, contract_id: str, metric_key: str, began: dt.datetime) -> dt.datetime | None:
        return self.session.scalar(select(func.min(SampleRow.start)).where(
            *_samples_of(org, contract_id, metric_key, "availability"), SampleRow.state == "up",
            SampleRow.start >= began))

    def report_delivered_at(self, org: str, contract_id: str, metric_key: str,
                            report_period: str) -> dt.datetime | None:
        return self.session.scalar(select(func.min(SampleRow.start)).where(
            *_samples_of(org, contract_id, metric_key, "report_delivered"), SampleRow.report_period == report_period))


def _samples_of(org: str, contract_id: str, metric_key: str, sample_kind: str) -> list:
    """Samples another organisation stored under the same contract id never count (tenancy, issue 16)."""
    return [SampleRow.org == org, SampleRow.contract_id == contract_id, SampleRow.kind == sample_kind,
            (SampleRow.metric_key.is_(None)) | (SampleRow.metric_key == metric_key)]


# --- samples -------------------------------------------------------------------------------------

class SampleRepository(_Repository):
    def known_sources(self, org: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        return known_sources(self.session, SampleRow, org, keys)

    def add(self, org: str, samples: Sequence[MetricSampleRecorded], now: dt.datetime) -> None:
        insert_ignoring_conflicts(self.session, SampleRow, [_sample_row(org, s, now) for s in samples])

    def open_outage_since(self, org: str, contract_id: str, before: dt.datetime) -> dt.datetime | None:
        """When the earliest outage still going on (no end) at `before` began."""
        return self.session.scalar(select(func.min(SampleRow.start)).where(
            SampleRow.org == org, SampleRow.contract_id == contract_id, SampleRow.kind == "availability", SampleRow.state == "down",
            SampleRow.end.is_(None), SampleRow.start <= before))

    def spans(self, org: str, contract_id: str) -> list[tuple[str, dt.datetime, dt.datetime]]:
        """(kind, first start, last start) of the contract's samples per kind."""
        return [tuple(r) for r in self.session.execute(
            select(SampleRow.kind, func.min(SampleRow.start), func.max(SampleRow.start))
            .where(SampleRow.org == org, SampleRow.contract_id == contract_id).group_by(SampleRow.kind)).all()]


def _sample_row(org: str, s: MetricSampleRecorded, now: dt.datetime) -> dict:
    single_score = s.kind == "survey" and s.score is not None
    return dict(org=org, contract_id=s.contract_id, source_id=s.source_id, kind=s.kind, metric_key=s.metric_key,
                start=s.start or s.at, end=s.end, state=s.state, offered=s.offered or 0,
                answered_within_threshold=s.answered_within_threshold or 0, abandoned=s.abandoned or 0,
                responses=1 if single_score else (s.responses or 0),
                score_sum=s.score if single_score else (s.score_sum or 0),
                contacts=s.contacts or 0, resolved_first_contact=s.resolved_first_contact or 0,
                report_period=s.report_period, received_at=now)


# --- timers --------------------------------------------------------------------------------------

_TIMER_FIELDS = ("org", "contract_id", "metric_key", "subject", "kind", "cycle", "period", "due_at", "status",
                 "fired_at", "details")


_TIMER_CHANGES = ("due_at", "status", "fired_at", "period", "details")


def _timer(row) -> Timer:
    return Timer(id=row.id, **{name: getattr(row, name) for name in _TIMER_FIELDS})


def _write_timers(session: Session, added: Sequence[Timer], kept: Sequence[Timer], dropped: Sequence[Timer]) -> None:
    """Many timers at once: one DELETE, one UPDATE and one INSERT statement, each for all its rows."""
    table = TimerRow.__table__
    for chunk in chunks([t.id for t in dropped], 500):
        session.execute(delete(table).where(table.c.id.in_(chunk)))
    if kept:
        executemany(session, update(table).where(table.c.id == bindparam("timer_id")).values(
            **{name: bindparam(f"new_{name}", type_=table.c[name].type) for name in _TIMER_CHANGES}),
            [{"timer_id": t.id, **{f"new_{name}": getattr(t, name) for name in _TIMER_CHANGES}} for t in kept])
    if added:
        executemany(session, table.insert(), [dict(id=t.id, **{name: getattr(t, name) for name in _TIMER_FIELDS})
                                              for t in added])


class TimerRepository(_Repository):
    """Timers are read and written as plain rows (no ORM objects): a run of tickets writes thousands at once."""

    def of_subject(self, org: str, contract_id: str, metric_key: str, subject: str) -> list[Timer]:
        self.pending.write()
        t = TimerRow.__table__.c
        return [_timer(r) for r in self.session.execute(select(TimerRow.__table__).where(
            t.org == org, t.contract_id == contract_id, t.metric_key == metric_key, t.subject == subject))]

    def add(self, timer: Timer) -> None:
        self.pending.timer("add", timer)

    def save(self, timer: Timer) -> None:
        self.pending.timer("save", timer)

    def delete(self, timer: Timer) -> None:
        self.pending.timer("delete", timer)

    def delete_pending(self, org: str, contract_id: str, metric_key: str) -> None:
        self.pending.write()
        self.session.execute(delete(TimerRow).where(TimerRow.org == org, TimerRow.contract_id == contract_id,
                                                    TimerRow.metric_key == metric_key, TimerRow.status == "pending"))

    def due(self, now: dt.datetime, limit: int) -> list[tuple[str, dt.datetime]]:
        self.pending.write()
        return [tuple(r) for r in self.session.execute(
            select(TimerRow.id, TimerRow.due_at).where(TimerRow.status == "pending", TimerRow.due_at <= now)
            .order_by(TimerRow.due_at).limit(limit)).all()]

    def claim(self, timer_id: str, due_at: dt.datetime, now: dt.datetime) -> Timer | None:
        """pending → fired with a conditional UPDATE; None if another replica fired it or new input moved it."""
        self.pending.write()
        if not claim(self.session, TimerRow.__table__, timer_id, expect_status="pending", expect_due_at=due_at,
                     status="fired", fired_at=now):
            return None
        return _timer(self.session.execute(select(TimerRow.__table__).where(TimerRow.id == timer_id)).one())

    def next_due(self) -> dt.datetime | None:
        self.pending.write()
        return self.session.scalar(select(func.min(TimerRow.due_at)).where(TimerRow.status == "pending"))


# --- windows (each metric's standing in a month) -------------------------------------------------

_STANDING_FIELDS = ("status", "closed", "actual", "met", "items", "breaches", "miss")


class WindowRepository(_Repository):
    def get_or_add(self, org: str, contract_id: str, metric_key: str, period: str,
                   now: dt.datetime) -> WindowStanding:
        row = self._get(org, contract_id, metric_key, period)
        if row is None:
            insert_ignoring_conflicts(self.session, WindowResultRow, [dict(
                id=new_id(), org=org, contract_id=contract_id, metric_key=metric_key, period=period,
                status="no_data", closed=False, items=0, breaches=0, miss=0, updated_at=now)])
            row = self._get(org, contract_id, metric_key, period)
        return WindowStanding(id=row.id, org=row.org, contract_id=row.contract_id, metric_key=row.metric_key,
                              period=row.period, **{name: getattr(row, name) for name in _STANDING_FIELDS})

    def save(self, standing: WindowStanding, now: dt.datetime) -> None:
        row = self.session.get(WindowResultRow, standing.id)
        for name in _STANDING_FIELDS:
            setattr(row, name, getattr(standing, name))
        row.updated_at = now

    def _get(self, org: str, contract_id: str, metric_key: str, period: str) -> WindowResultRow | None:
        return self.session.scalar(select(WindowResultRow).where(WindowResultRow.org == org,
                                                                 WindowResultRow.contract_id == contract_id,
                                                                 WindowResultRow.metric_key == metric_key,
                                                                 WindowResultRow.period == period))

    def raise_status(self, org: str, contract_id: str, metric_key: str, period: str, status: str,
                     from_statuses: Sequence[str]) -> None:
        """Move a window standing in one of `from_statuses` to `status` (a timer already announced it)."""
        self.session.execute(update(WindowResultRow).where(
            WindowResultRow.org == org, WindowResultRow.contract_id == contract_id, WindowResultRow.metric_key == metric_key,
            WindowResultRow.period == period, WindowResultRow.status.in_(from_statuses)).values(status=status))

    def delete(self, org: str, contract_id: str, metric_key: str, periods: Sequence[str]) -> None:
        self.session.execute(delete(WindowResultRow).where(
            WindowResultRow.org == org, WindowResultRow.contract_id == contract_id, WindowResultRow.metric_key == metric_key,
            WindowResultRow.period.in_(periods)))


# --- months --------------------------------------------------------------------------------------

_MONTH_FIELDS = ("org", "contract_id", "period", "starts_at", "ends_at", "status", "revision", "announced",
                 "credit_id", "credit_amount", "credit_detail")
_MONTH_CHANGES = ("revision", "announced", "credit_id", "credit_amount", "credit_detail")


def _month(row: PeriodRow) -> Month:
    return Month(id=row.id, **{name: getattr(row, name) for name in _MONTH_FIELDS})


class PeriodRepository(_Repository):
    def open(self, org: str, contract_id: str, period: str, starts_at: dt.datetime, ends_at: dt.datetime) -> None:
        insert_ignoring_conflicts(self.session, PeriodRow, [dict(
            id=new_id(), org=org, contract_id=contract_id, period=period, starts_at=starts_at, ends_at=ends_at,
            status="open")])

    def periods(self, org: str, contract_id: str, status: str) -> list[str]:
        return list(self.session.scalars(select(PeriodRow.period).where(
            PeriodRow.org == org, PeriodRow.contract_id == contract_id, PeriodRow.status == status)).all())

    def closed_for_update(self, org: str, contract_id: str, periods: Iterable[str]) -> list[Month]:
        """The closed months among `periods`, locked (corrections of one month are numbered one after another)."""
        return [_month(r) for r in self.session.scalars(select(PeriodRow).where(
            PeriodRow.org == org, PeriodRow.contract_id == contract_id, PeriodRow.period.in_(sorted(periods)),
            PeriodRow.status == "closed").order_by(PeriodRow.period).with_for_update())]

    def save(self, month: Month) -> None:
        row = self.session.get(PeriodRow, month.id)
        for name in _MONTH_CHANGES:
            setattr(row, name, getattr(month, name))

    def due(self, now: dt.datetime, limit: int) -> list[tuple[str, str, str]]:
        """(id, org, contract) of open months that have ended, the earliest first."""
        return [tuple(r) for r in self.session.execute(
            select(PeriodRow.id, PeriodRow.org, PeriodRow.contract_id)
            .where(PeriodRow.status == "open", PeriodRow.ends_at <= now)
            .order_by(PeriodRow.ends_at).limit(limit)).all()]

    def claim(self, period_id: str, now: dt.datetime) -> Month | None:
        """open → closed with a conditional UPDATE; None if another replica closed it."""
        if not claim(self.session, PeriodRow.__table__, period_id, expect_status="open", status="closed",
                     closed_at=now):
            return None
        return _month(self.session.get(PeriodRow, period_id))

    def next_due(self) -> dt.datetime | None:
        return self.session.scalar(select(func.min(PeriodRow.ends_at)).where(PeriodRow.status == "open"))


# --- feed keys -----------------------------------------------------------------------------------

_FEED_KEY_FIELDS = ("key_id", "org", "name", "created_by", "created_at", "revoked_at")


class FeedKeyRepository(_Repository):
    def add(self, key: FeedKey) -> None:
        self.session.add(FeedKeyRow(**{name: getattr(key, name) for name in _FEED_KEY_FIELDS}))
        self.session.flush()

    def list(self, org: str) -> list[FeedKey]:
        rows = self.session.scalars(select(FeedKeyRow).where(FeedKeyRow.org == org)
                                    .order_by(FeedKeyRow.created_at, FeedKeyRow.key_id)).all()
        return [FeedKey(**{name: getattr(r, name) for name in _FEED_KEY_FIELDS}) for r in rows]

    def revoke(self, org: str, key_id: str, now: dt.datetime) -> bool:
        """False when `org` has no such key (another organisation's key is not found)."""
        row = self.session.get(FeedKeyRow, key_id)
        if row is None or row.org != org:
            return False
        row.revoked_at = row.revoked_at or now
        return True

    def active_orgs(self, key_ids: Iterable[str]) -> dict[str, str]:
        """{key id: organisation} of the keys among `key_ids` not revoked: one query for a run of records."""
        ids = sorted(set(key_ids))
        return {k: o for chunk in chunks(ids, 500) for k, o in self.session.execute(
            select(FeedKeyRow.key_id, FeedKeyRow.org).where(FeedKeyRow.key_id.in_(chunk),
                                                            FeedKeyRow.revoked_at.is_(None)))}
