"""Metric samples: stored once by source id; the windows they count in are measured again."""
from __future__ import annotations

import datetime as dt

from services.sla.domain.definitions import SlaDefinition
from services.sla.domain.periods import Period
from services.sla.domain.samples import FEEDS, months, new_by_source, windows_touched
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from services.sla.service_layer.windows import WindowKey, refresh_windows
from shared.events.sla import MetricSampleRecorded


def record_samples(uow: SlaUnitOfWork, org: str, samples: list[MetricSampleRecorded], now: dt.datetime,
                   definitions: dict[str, SlaDefinition] | None = None) -> list[str]:
    """Store each sample once (by its source id) and refresh the windows it counts in. Samples of a contract
    without a definition yet are kept and counted once it arrives."""
    with uow:
        if definitions is None:
            definitions = uow.definitions.get_many(org, [s.contract_id for s in samples])
        seen = uow.samples.known_sources(org, [(s.contract_id, s.source_id) for s in samples])
        statuses, fresh = new_by_source(samples, seen)
        uow.samples.add(org, fresh, now)
        for contract_id in sorted({s.contract_id for s in fresh}):
            definition = definitions.get(contract_id)
            if definition is None:
                continue   # kept: counted once the contract's definition arrives
            touched: set[WindowKey] = set()
            for s in (s for s in fresh if s.contract_id == contract_id):
                metrics = [m for m in definition.window_metrics()
                           if m.kind in FEEDS[s.kind] and s.metric_key in (None, m.key)]
                windows = windows_touched(s, definition.timezone, now) + _outage_ended(uow, definition, s)
                touched |= {(m.key, str(p)) for p in windows for m in metrics}
            refresh_windows(uow, definition, touched, now)
        uow.commit()
    return statuses


def _outage_ended(uow: SlaUnitOfWork, definition: SlaDefinition, sample: MetricSampleRecorded) -> list[Period]:
    """An `up` sample ends the outages still going on before it: every month they ran through changes."""
    if sample.kind != "availability" or sample.state != "up":
        return []
    since = uow.samples.open_outage_since(definition.org, definition.contract_id, sample.start)
    tz = definition.timezone
    return months(Period.of(since, tz), Period.of(sample.start, tz)) if since else []
