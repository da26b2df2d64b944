"""Metric samples: stored once by source id; the windows they count in are measured again."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.sla.adapters import repository as repo
from services.sla.adapters.tables import SampleRow
from services.sla.domain.definitions import SlaDefinition
from services.sla.domain.periods import Period
from services.sla.domain.samples import FEEDS, months, windows_touched
from services.sla.service_layer.windows import WindowKey, refresh_windows
from shared.events.sla import MetricSampleRecorded
from shared.uow import UnitOfWork


def record_samples(uow: UnitOfWork, org: str, samples: list[MetricSampleRecorded], now: dt.datetime,
                   definitions: dict[str, SlaDefinition]) -> list[str]:
    """Store each sample once (by its source id) and refresh the windows it counts in."""
    session = uow.session
    seen = repo.known_sources(session, SampleRow, org, [(s.contract_id, s.source_id) for s in samples])
    statuses, rows, fresh = [], [], []
    for s in samples:
        if (s.contract_id, s.source_id) in seen:
            statuses.append("duplicate")
            continue
        seen.add((s.contract_id, s.source_id))
        statuses.append("accepted")
        fresh.append(s)
        rows.append(_sample_row(org, s, now))
    repo.insert_ignoring_conflicts(session, SampleRow, rows)
    for contract_id in sorted({s.contract_id for s in fresh}):
        definition = definitions.get(contract_id)
        if definition is None:
            continue   # kept: counted once the contract's definition arrives
        touched: set[WindowKey] = set()
        for s in (s for s in fresh if s.contract_id == contract_id):
            metrics = [m for m in definition.window_metrics()
                       if m.kind in FEEDS[s.kind] and s.metric_key in (None, m.key)]
            windows = windows_touched(s, definition.timezone, now) + _outage_ended(session, definition, s)
            touched |= {(m.key, str(p)) for p in windows for m in metrics}
        refresh_windows(uow, definition, touched, now)
    return statuses


def _outage_ended(session: Session, definition: SlaDefinition, sample: MetricSampleRecorded) -> list[Period]:
    """An `up` sample ends the outages still going on before it: every month they ran through changes."""
    if sample.kind != "availability" or sample.state != "up":
        return []
    since = session.scalar(select(func.min(SampleRow.start)).where(
        SampleRow.contract_id == definition.contract_id, SampleRow.kind == "availability",
        SampleRow.state == "down", SampleRow.end.is_(None), SampleRow.start <= sample.start))
    tz = definition.timezone
    return months(Period.of(since, tz), Period.of(sample.start, tz)) if since else []


def _sample_row(org: str, s: MetricSampleRecorded, now: dt.datetime) -> dict:
    single_score = s.kind == "survey" and s.score is not None
    return dict(org=org, contract_id=s.contract_id, source_id=s.source_id, kind=s.kind, metric_key=s.metric_key,
                start=s.start or s.at, end=s.end, state=s.state, offered=s.offered or 0,
                answered_within_threshold=s.answered_within_threshold or 0, abandoned=s.abandoned or 0,
                responses=1 if single_score else (s.responses or 0),
                score_sum=s.score if single_score else (s.score_sum or 0),
                contacts=s.contacts or 0, resolved_first_contact=s.resolved_first_contact or 0,
                report_period=s.report_period, received_at=now)
