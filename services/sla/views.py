"""Read models: what the dashboards, reports and lists show (queries only, nothing is written).

Every view takes the service's `Database` first and opens its own read session, so routes never
do. Windows are measured with the same domain function the use cases use, over the repository's
counting queries (`WindowFacts`)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.sla.adapters import stream
from services.sla.adapters.repository import DefinitionRepository, WindowFacts
from services.sla.adapters.tables import PeriodRow, PublishedEventRow, TicketClockRow, WindowResultRow
from services.sla.domain import credits
from services.sla.domain.compliance import WindowOutcome
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from services.sla.domain.feed_keys import FeedKey
from services.sla.domain.periods import Period
from services.sla.domain.measurement import measure_window
from shared.db import Database
from shared.errors import NotFound
from shared.pagination import page_of


def definition_view(definition: SlaDefinition) -> dict:
    return {
        "contract_id": definition.contract_id,
        "contract_version": definition.contract_version,
        "number": definition.number,
        "title": definition.title,
        "currency": definition.currency,
        "monthly_fee": _str(definition.monthly_fee),
        "effective_date": definition.effective_date.isoformat(),
        "end_date": definition.end_date.isoformat(),
        "service_hours": definition.service_hours.model_dump(mode="json"),
        "credit_cap_share": _str(definition.credit_cap_share),
        "metrics": [{**m.terms.model_dump(mode="json"), "contract_version": m.contract_version}
                    for m in definition.metrics],
    }


def definitions(db: Database, org: str, after: str | None, limit: int,
                parties: tuple[str, ...] | None = None) -> dict:
    """One page of the organisation's definitions (only `parties`' for a counterparty)."""
    with db.read_session() as session:
        found = DefinitionRepository(session).list(org, after, limit + 1, parties)
    items, next_cursor = page_of(found, limit, lambda d: d.contract_id)
    return {"items": [definition_view(d) for d in items], "next_cursor": next_cursor}


def vendor_party_of(db: Database, org: str, contract_id: str) -> str | None:
    """The contract's vendor party, what counterparty scoping compares."""
    with db.read_session() as session:
        return DefinitionRepository(session).vendor_party(org, contract_id)


def contracts_of_parties(db: Database, org: str, contract_ids: list[str], parties: tuple[str, ...]) -> set[str]:
    """Which of these contracts a counterparty of `parties` reaches."""
    with db.read_session() as session:
        return DefinitionRepository(session).of_parties(org, contract_ids, parties)


def definition(db: Database, org: str, contract_id: str) -> dict:
    with db.read_session() as session:
        return definition_view(require_definition(session, org, contract_id))


def require_definition(session: Session, org: str, contract_id: str) -> SlaDefinition:
    definition = DefinitionRepository(session).get(org, contract_id)
    if definition is None:
        raise NotFound(f"No SLA definition for contract {contract_id}.")
    return definition


def contract_sla(db: Database, org: str, contract_id: str, now: dt.datetime) -> dict:
    """Each metric's target and standing so far this month, open tickets at risk or breached, and past months."""
    with db.read_session() as session:
        return _contract_sla(session, org, contract_id, now)


def _contract_sla(session: Session, org: str, contract_id: str, now: dt.datetime) -> dict:
    definition = require_definition(session, org, contract_id)
    period = Period.of(now, definition.timezone)
    return {
        "contract_id": contract_id,
        "contract_version": definition.contract_version,
        "title": definition.title,
        "timezone": definition.timezone,
        "period": str(period),
        "as_of": now.isoformat(),
        "metrics": [metric_row(m, o) for m, o in measure_all(session, definition, period, now, closed=False)],
        "open_tickets": open_tickets(session, definition, now),
        "history": history(session, definition),
    }


def measure_all(session: Session, definition: SlaDefinition, period: Period, now: dt.datetime,
                closed: bool) -> list[tuple[MetricDefinition, WindowOutcome]]:
    facts = WindowFacts(session)
    return [(m, measure_window(facts, definition, m, period, now, closed)) for m in definition.metrics]


def metric_row(metric: MetricDefinition, outcome: WindowOutcome) -> dict:
    return {
        "key": metric.key, "kind": metric.kind, "label": metric.terms.label, "priority": metric.terms.priority,
        "target": _str(metric.terms.target), "actual": _str(outcome.actual), "compliance": outcome.status,
        "met": outcome.met, "items": outcome.items, "breaches": outcome.breaches,
        "clause_key": metric.terms.clause_key, "contract_version": metric.contract_version,
    }


def open_tickets(session: Session, definition: SlaDefinition, now: dt.datetime) -> list[dict]:
    rows = session.scalars(select(TicketClockRow).where(
        TicketClockRow.org == definition.org, TicketClockRow.contract_id == definition.contract_id,
        TicketClockRow.state.in_(("running", "paused")),
        (TicketClockRow.at_risk_at <= now) | (TicketClockRow.breached_at <= now),
    ).order_by(TicketClockRow.deadline, TicketClockRow.ticket_id)).all()
    return [{
        "ticket_id": r.ticket_id, "metric_key": r.metric_key, "priority": r.priority, "state": r.state,
        "status": "breached" if r.breached_at is not None and r.breached_at <= now else "at_risk",
        "opened_at": r.opened_at.isoformat(), "deadline": r.deadline.isoformat() if r.deadline else None,
        "breached_at": r.breached_at.isoformat() if r.breached_at else None,
    } for r in rows]


def history(session: Session, definition: SlaDefinition) -> list[dict]:
    results = session.scalars(select(WindowResultRow).where(
        WindowResultRow.org == definition.org, WindowResultRow.contract_id == definition.contract_id)
        .order_by(WindowResultRow.period.desc())).all()
    periods = {p.period: p for p in session.scalars(select(PeriodRow).where(
        PeriodRow.org == definition.org, PeriodRow.contract_id == definition.contract_id)).all()}
    out: dict[str, dict] = {}
    for r in results:
        entry = out.setdefault(r.period, _period_entry(r.period, periods.get(r.period)))
        entry["metrics"].append({"key": r.metric_key, "actual": _str(r.actual), "compliance": r.status, "met": r.met,
                                 "items": r.items, "breaches": r.breaches})
    return list(out.values())


def _period_entry(period: str, row: PeriodRow | None) -> dict:
    closed = row is not None and row.status == "closed"
    credit = None
    if row is not None and row.credit_id:
        credit = {"credit_id": row.credit_id, "amount": _str(row.credit_amount), **(row.credit_detail or {})}
    revision = row.revision if row is not None else 0   # corrections by late input after the close add one each
    return {"period": period, "closed": closed, "revision": revision, "metrics": [], "credit": credit}


def overview(db: Database, org: str, now: dt.datetime, limit: int = 500) -> list[dict]:
    """Every contract of the organisation: this month's standing per metric and live ticket trouble."""
    with db.read_session() as session:
        return _overview(session, org, now, limit)


def _overview(session: Session, org: str, now: dt.datetime, limit: int) -> list[dict]:
    out = []
    for definition in DefinitionRepository(session).list(org, None, limit):
        period = str(Period.of(now, definition.timezone))
        results = {r.metric_key: r for r in session.scalars(select(WindowResultRow).where(
            WindowResultRow.org == org, WindowResultRow.contract_id == definition.contract_id,
            WindowResultRow.period == period)).all()}
        trouble = session.execute(select(func.count()).select_from(TicketClockRow).where(
            TicketClockRow.org == org, TicketClockRow.contract_id == definition.contract_id, TicketClockRow.state.in_(("running", "paused")),
            TicketClockRow.breached_at <= now)).scalar_one()
        out.append({
            "contract_id": definition.contract_id, "number": definition.number, "title": definition.title,
            "period": period, "open_breaches": trouble,
            "metrics": [{"key": m.key, "label": m.terms.label, "kind": m.kind, "target": _str(m.terms.target),
                         "actual": _str(results[m.key].actual) if m.key in results else None,
                         "compliance": results[m.key].status if m.key in results else "no_data"}
                        for m in definition.metrics],
        })
    return out


def period_report(db: Database, org: str, contract_id: str, period: Period, now: dt.datetime) -> dict:
    """The monthly report: every metric's result, the breaches, and the service credit."""
    with db.read_session() as session:
        return _period_report(session, org, contract_id, period, now)


def _period_report(session: Session, org: str, contract_id: str, period: Period, now: dt.datetime) -> dict:
    definition = require_definition(session, org, contract_id)
    ends = period.ends_at(definition.timezone)
    closed = now >= ends
    outcomes = measure_all(session, definition, period, now, closed)
    assessment = credits.assess(outcomes, definition.monthly_fee, definition.credit_cap_share)
    stored = session.scalar(select(PeriodRow).where(PeriodRow.org == org, PeriodRow.contract_id == contract_id,
                                                    PeriodRow.period == str(period)))
    breached_tickets = session.scalars(select(TicketClockRow).where(
        TicketClockRow.org == org, TicketClockRow.contract_id == contract_id, TicketClockRow.period == str(period),
        TicketClockRow.breached_at <= now).order_by(TicketClockRow.breached_at, TicketClockRow.ticket_id)).all()
    return {
        "contract_id": contract_id, "number": definition.number, "title": definition.title,
        "contract_version": definition.contract_version, "period": str(period),
        "starts_at": period.starts_at(definition.timezone).isoformat(), "ends_at": ends.isoformat(),
        "final": bool(stored and stored.status == "closed"), "revision": stored.revision if stored else 0,
        "currency": definition.currency,
        "monthly_fee": _str(definition.monthly_fee),
        "closed": closed,
        "metrics": [metric_row(m, o) for m, o in outcomes],
        "credit": {
            "credit_id": stored.credit_id if stored else None,
            "amount": _str(stored.credit_amount if stored and stored.credit_id else assessment.amount),
            "share_of_monthly_fee": _str(assessment.share), "capped": assessment.capped,
            "lines": [{"metric_key": l.metric_key, "share": _str(l.share), "breaches": l.breaches}
                      for l in assessment.lines],
        },
        "breaches": [{"ticket_id": t.ticket_id, "metric_key": t.metric_key, "priority": t.priority,
                      "opened_at": t.opened_at.isoformat(), "breached_at": t.breached_at.isoformat()}
                     for t in breached_tickets],
    }


def feed_key_view(key: FeedKey) -> dict:
    return {"key_id": key.key_id, "name": key.name, "created_by": key.created_by,
            "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


def last_stream_seq(db: Database) -> int:
    """Where the live stream stands now (a client without Last-Event-ID starts here)."""
    with db.read_session() as session:
        return stream.last_seq(session)


def stream_events_after(db: Database, org: str, after: int, contract_id: str | None) -> list[PublishedEventRow]:
    with db.read_session() as session:
        return stream.events_after(session, org, after, contract_id)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
