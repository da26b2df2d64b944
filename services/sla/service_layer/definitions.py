"""Definitions: created from a contract's terms, amended by later versions; months opened."""
from __future__ import annotations

import datetime as dt
from typing import Callable

from services.sla.domain.definitions import SlaDefinition, amend, definition_from_terms
from services.sla.domain.periods import Period
from services.sla.domain.samples import FEEDS
from services.sla.service_layer.tickets import recompute_tickets
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from services.sla.service_layer.windows import WindowKey, refresh_windows
from shared.errors import Conflict
from shared.events.contracts import ContractTerms
from shared.idempotency import Answer, IdempotencyKey, once


def apply_contract_terms(uow: SlaUnitOfWork, terms: ContractTerms, now: dt.datetime) -> SlaDefinition | None:
    """From `contract.activated` / `contract.amended`: the terms carry the whole SLA."""
    return apply_definition(uow, definition_from_terms(terms), now)


def define_sla(uow: SlaUnitOfWork, proposed: SlaDefinition, key: IdempotencyKey, now: dt.datetime,
               present: Callable[[SlaDefinition], dict]) -> Answer:
    """`POST /v1/sla/definitions`: define (201) or, with a higher version, amend (200) the SLA of a contract
    kept outside Qiyue; once per Idempotency-Key. The answer is `present(definition)`."""
    def act() -> Answer:
        existing = uow.definitions.get(proposed.org, proposed.contract_id)
        if existing is not None and existing.contract_version >= proposed.contract_version:
            raise Conflict(f"Version {existing.contract_version} is already defined; send a higher version to amend.")
        definition = _apply(uow, proposed, now)
        return (200 if existing else 201), present(definition)
    return once(uow, key, act)


def apply_definition(uow: SlaUnitOfWork, proposed: SlaDefinition, now: dt.datetime) -> SlaDefinition | None:
    """Create the definition, or amend it to a newer contract version (a version already applied is ignored)."""
    with uow:
        definition = _apply(uow, proposed, now)
        uow.commit()
    return definition


def _apply(uow: SlaUnitOfWork, proposed: SlaDefinition, now: dt.datetime) -> SlaDefinition | None:
    current = uow.definitions.get(proposed.org, proposed.contract_id)
    if current is None:
        if uow.definitions.taken(proposed.contract_id):
            raise Conflict("This contract id is already used by another organisation.")
        return _create(uow, proposed, now) if proposed.metrics else None
    if proposed.contract_version <= current.contract_version:
        return current
    amended, amendment = amend(current, proposed)      # records sla.definition_updated
    uow.definitions.save(amended, now)
    uow.collect(amended)
    for key in amendment.removed:
        _forget_metric(uow, amended, key)
    reevaluate(uow, amended, now)
    return amended


def _create(uow: SlaUnitOfWork, definition: SlaDefinition, now: dt.datetime) -> SlaDefinition:
    definition.record_created()
    uow.definitions.save(definition, now)
    uow.collect(definition)
    first = min(Period.of_date(definition.effective_date), Period.of(now, definition.timezone))
    open_period(uow, definition, first, now)
    reevaluate(uow, definition, now)
    return definition


def _forget_metric(uow: SlaUnitOfWork, definition: SlaDefinition, key: str) -> None:
    """A metric the amended contract no longer promises: its open windows, clocks and pending timers go."""
    org, cid = definition.org, definition.contract_id
    open_periods = uow.periods.periods(org, cid, "open")
    uow.tickets.delete_clocks(org, cid, key, open_periods)
    uow.timers.delete_pending(org, cid, key)
    uow.windows.delete(org, cid, key, open_periods)


def reevaluate(uow: SlaUnitOfWork, definition: SlaDefinition, now: dt.datetime) -> None:
    """After the definition changed: recompute every ticket still open or in an open window, and every open window."""
    org, cid = definition.org, definition.contract_id
    open_periods = set(uow.periods.periods(org, cid, "open"))
    clocks = uow.tickets.clock_states(org, cid)
    settled = {t for t, state, period in clocks if state == "stopped" and period not in open_periods}
    live = {t for t, state, period in clocks if not (state == "stopped" and period not in open_periods)}
    tickets = uow.tickets.ticket_ids(org, cid)
    touched = recompute_tickets(uow, definition, (tickets - settled) | live, now)
    touched |= {(m.key, p) for m in definition.metrics for p in open_periods}
    touched |= _windows_with_samples(uow, definition)
    # A month already closed keeps the terms it was closed under: amended terms do not reassess its credit.
    closed = set(uow.periods.periods(org, cid, "closed"))
    refresh_windows(uow, definition, {(key, period) for key, period in touched if period not in closed}, now)


def _windows_with_samples(uow: SlaUnitOfWork, definition: SlaDefinition) -> set[WindowKey]:
    """Windows holding samples that arrived before the definition did (they are counted now)."""
    touched: set[WindowKey] = set()
    for kind, first, last in uow.samples.spans(definition.org, definition.contract_id):
        period, end = Period.of(first, definition.timezone), Period.of(last, definition.timezone).next()
        while period <= end:
            touched |= {(m.key, str(period)) for m in definition.window_metrics() if m.kind in FEEDS[kind]}
            period = period.next()
    return touched


def open_period(uow: SlaUnitOfWork, definition: SlaDefinition, period: Period, now: dt.datetime) -> None:
    tz = definition.timezone
    uow.periods.open(definition.org, definition.contract_id, str(period), period.starts_at(tz), period.ends_at(tz))
    refresh_windows(uow, definition, {(m.key, str(period)) for m in definition.metrics}, now)
