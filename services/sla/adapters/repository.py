"""Loading and saving SLA definitions, and the few SQL helpers the sla service needs."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Iterable, Iterator, Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.sla.adapters.tables import DefinitionRow, MetricRow
from services.sla.domain.definitions import MetricDefinition, SlaDefinition
from shared.events.contracts import ServiceHours, SlaMetric


def new_id() -> str:
    return uuid.uuid4().hex


def insert_ignoring_conflicts(session: Session, model, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a row another transaction already wrote is left as it is."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for chunk in chunks(rows, 500):
        session.execute(insert(model.__table__).values(chunk).on_conflict_do_nothing())


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _to_domain(row: DefinitionRow, metrics: Iterable[MetricRow]) -> SlaDefinition:
    return SlaDefinition(
        contract_id=row.contract_id, org=row.org, contract_version=row.contract_version, number=row.number,
        title=row.title, currency=row.currency, monthly_fee=row.monthly_fee, effective_date=row.effective_date,
        end_date=row.end_date, service_hours=ServiceHours.model_validate(row.service_hours),
        credit_cap_share=row.credit_cap_share,
        metrics=tuple(MetricDefinition(SlaMetric.model_validate(m.terms), m.contract_version)
                      for m in sorted(metrics, key=lambda m: m.position)),
    )


def get_definition(session: Session, org: str, contract_id: str) -> SlaDefinition | None:
    """The definition of a contract of `org` (another organisation's contract is not found)."""
    row = session.get(DefinitionRow, contract_id)
    if row is None or row.org != org:
        return None
    metrics = session.scalars(select(MetricRow).where(MetricRow.contract_id == contract_id)).all()
    return _to_domain(row, metrics)


def get_definition_row(session: Session, contract_id: str) -> DefinitionRow | None:
    """Whatever organisation owns it (only to refuse reusing a contract id)."""
    return session.get(DefinitionRow, contract_id)


def get_definitions(session: Session, org: str, contract_ids: Iterable[str]) -> dict[str, SlaDefinition]:
    ids = sorted(set(contract_ids))
    rows = session.scalars(select(DefinitionRow).where(DefinitionRow.org == org, DefinitionRow.contract_id.in_(ids))).all()
    metrics = session.scalars(select(MetricRow).where(MetricRow.contract_id.in_(ids))).all() if rows else []
    return {r.contract_id: _to_domain(r, [m for m in metrics if m.contract_id == r.contract_id]) for r in rows}


def list_definitions(session: Session, org: str, after: str | None, limit: int) -> list[SlaDefinition]:
    query = select(DefinitionRow).where(DefinitionRow.org == org).order_by(DefinitionRow.contract_id).limit(limit)
    if after:
        query = query.where(DefinitionRow.contract_id > after)
    rows = session.scalars(query).all()
    return list(get_definitions(session, org, [r.contract_id for r in rows]).values()) if rows else []


def save_definition(session: Session, definition: SlaDefinition, now: dt.datetime) -> None:
    row = session.get(DefinitionRow, definition.contract_id)
    values = dict(org=definition.org, contract_version=definition.contract_version, number=definition.number,
                  title=definition.title, currency=definition.currency, monthly_fee=definition.monthly_fee,
                  effective_date=definition.effective_date, end_date=definition.end_date,
                  service_hours=definition.service_hours.model_dump(mode="json"),
                  credit_cap_share=definition.credit_cap_share, updated_at=now)
    if row is None:
        session.add(DefinitionRow(contract_id=definition.contract_id, created_at=now, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.execute(delete(MetricRow).where(MetricRow.contract_id == definition.contract_id))
    session.flush()
    for position, metric in enumerate(definition.metrics):
        session.add(MetricRow(id=new_id(), org=definition.org, contract_id=definition.contract_id, key=metric.key,
                              kind=metric.kind, priority=metric.terms.priority, clause_key=metric.terms.clause_key,
                              contract_version=metric.contract_version, position=position,
                              terms=metric.terms.model_dump(mode="json")))
    session.flush()


def known_sources(session: Session, model, org: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (contract, source id) pairs are already stored: the feeds' own ids make ingestion idempotent."""
    known: set[tuple[str, str]] = set()
    for contract_id in {c for c, _ in keys}:
        sources = sorted({s for c, s in keys if c == contract_id})
        for chunk in chunks(sources, 500):
            known |= {(contract_id, s) for s in session.scalars(select(model.source_id).where(
                model.org == org, model.contract_id == contract_id, model.source_id.in_(chunk))).all()}
    return known
