"""The sla use cases against a fake unit of work: in-memory repositories with the same attributes as
`SlaUnitOfWork` (`definitions`, `tickets`, `samples`, `timers`, `windows`, `periods`, `facts`), a
`commit()` that records it committed and takes the collected aggregates' events, and no database."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest

from services.sla import service_layer
from services.sla.domain.definitions import definition_from_terms
from services.sla.domain.months import Month
from services.sla.domain.periods import Period
from services.sla.domain.standing import WindowStanding
from services.sla.domain.ticket_clock import TicketEvent
from services.sla.domain.timers import Timer
from shared.errors import Conflict, NotFound
from shared.events.contracts import ContractTerms, CreditRule, CreditTier, Party, ServiceHours, SlaMetric, SlaTerms
from shared.events.sla import (MetricSampleRecorded, SlaAtRisk, SlaBreached, SlaCreditAssessed, SlaDefinitionCreated,
                               SlaDefinitionUpdated, SlaPeriodClosed, SlaRecovered, TicketEventRecorded)
from shared.ids import new_id
from shared.idempotency import IdempotencyKey

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 10, 15, 4, 0, tzinfo=UTC)          # mid-October in Shanghai
HOURS = ServiceHours(hours={d: [("00:00", "24:00")] for d in range(1, 8)})
P1 = SlaMetric(key="p1-res", kind="resolution", label="P1 resolution", target=Decimal(240), priority="P1",
               time_basis="calendar", clause_key="sla.resolution")
SL = SlaMetric(key="sl", kind="service_level", label="80/20", target=Decimal("0.8"), threshold_seconds=20,
               credit=CreditRule(mode="per_window",
                                 tiers=[CreditTier(miss_up_to=None, share_of_monthly_fee=Decimal("0.05"))]))


def terms(version: int = 1, metrics=(P1, SL), org: str = "acme", contract_id: str = "c1") -> ContractTerms:
    return ContractTerms(
        contract_id=contract_id, org=org, number="QY-1", version=version, kind="call_centre", language="zh-CN",
        title="Hotline", total_amount=Decimal("1200000"), monthly_fee=Decimal("100000"),
        effective_date=dt.date(2026, 10, 1), end_date=dt.date(2027, 9, 30),
        parties=[Party(role="client", name="甲"), Party(role="vendor", name="乙")],
        sla=SlaTerms(service_hours=HOURS, metrics=list(metrics), credit_cap_share=Decimal("0.15")))


# --- the fakes -------------------------------------------------------------------------------------

class FakeDefinitions:
    def __init__(self):
        self.rows = {}

    def get(self, org, contract_id):
        found = self.rows.get(contract_id)
        return dataclasses.replace(found) if found is not None and found.org == org else None

    def taken(self, contract_id):
        return contract_id in self.rows

    def get_many(self, org, contract_ids):
        return {c: d for c in set(contract_ids) if (d := self.get(org, c)) is not None}

    def list(self, org, after, limit):
        return [self.get(org, c) for c in sorted(self.rows) if self.rows[c].org == org and (not after or c > after)][:limit]

    def save(self, definition, now):
        self.rows[definition.contract_id] = dataclasses.replace(definition)   # a copy, without its events


class FakeTimers:
    def __init__(self):
        self.rows: dict[str, Timer] = {}

    def _copy(self, timer):
        return dataclasses.replace(timer, events=[], details=dict(timer.details))

    def of_subject(self, org, contract_id, metric_key, subject):
        return [self._copy(t) for t in self.rows.values()
                if (t.org, t.contract_id, t.metric_key, t.subject) == (org, contract_id, metric_key, subject)]

    def add(self, timer):
        self.rows[timer.id] = self._copy(timer)

    save = add

    def delete(self, timer):
        del self.rows[timer.id]

    def delete_pending(self, org, contract_id, metric_key):
        for t in [t for t in self.rows.values()
                  if (t.org, t.contract_id, t.metric_key, t.status) == (org, contract_id, metric_key, "pending")]:
            del self.rows[t.id]

    def due(self, now, limit):
        return sorted(((t.id, t.due_at) for t in self.rows.values() if t.status == "pending" and t.due_at <= now),
                      key=lambda x: x[1])[:limit]

    def claim(self, timer_id, due_at, now):
        t = self.rows.get(timer_id)
        if t is None or t.status != "pending" or t.due_at != due_at:
            return None
        t.status, t.fired_at = "fired", now
        return self._copy(t)

    def next_due(self):
        return min((t.due_at for t in self.rows.values() if t.status == "pending"), default=None)

    def pending(self, kind=None):
        return [t for t in self.rows.values() if t.status == "pending" and kind in (None, t.kind)]


class FakeTickets:
    def __init__(self, timers: FakeTimers):
        self.events: list[TicketEventRecorded] = []
        self.clocks: dict[tuple, SimpleNamespace] = {}
        self.timers = timers

    def known_sources(self, org, keys):
        return {(e.contract_id, e.source_id) for e in self.events if e.org == org} & set(keys)

    def add_events(self, org, events, now):
        self.events.extend(events)

    def load(self, org, contract_id, ticket_ids, timer_metrics):
        events, clocks, timers = {}, {}, {}
        for i, e in enumerate(self.events):
            if e.org == org and e.contract_id == contract_id and e.ticket_id in ticket_ids:
                events.setdefault(e.ticket_id, []).append(TicketEvent(e.kind, e.at, e.priority, i))
        for (cid, ticket, key), c in self.clocks.items():
            if cid == contract_id and ticket in ticket_ids:
                clocks.setdefault(ticket, {})[key] = c
        for t in self.timers.rows.values():
            if t.org == org and t.contract_id == contract_id and t.metric_key in timer_metrics and t.subject in ticket_ids:
                timers.setdefault((t.metric_key, t.subject), []).append(self.timers._copy(t))
        return events, clocks, timers

    def save_clock(self, row, **values):
        row = row or SimpleNamespace()
        vars(row).update(values)
        self.clocks[(row.contract_id, row.ticket_id, row.metric_key)] = row

    def delete_clock(self, row):
        del self.clocks[(row.contract_id, row.ticket_id, row.metric_key)]

    def delete_clocks(self, org, contract_id, metric_key, periods):
        for k in [k for k, c in self.clocks.items() if k[0] == contract_id and k[2] == metric_key and c.period in periods]:
            del self.clocks[k]

    def clock_states(self, org, contract_id):
        return [(c.ticket_id, c.state, c.period) for (cid, _, _), c in self.clocks.items() if cid == contract_id]

    def ticket_ids(self, org, contract_id):
        return {e.ticket_id for e in self.events if e.org == org and e.contract_id == contract_id}


class FakeSamples:
    def __init__(self):
        self.rows: list[MetricSampleRecorded] = []

    def known_sources(self, org, keys):
        return {(s.contract_id, s.source_id) for s in self.rows if s.org == org} & set(keys)

    def add(self, org, samples, now):
        self.rows.extend(samples)

    def open_outage_since(self, org, contract_id, before):
        return min((s.start for s in self.rows if (s.org, s.contract_id) == (org, contract_id) and s.kind == "availability"
                    and s.state == "down" and s.end is None and s.start <= before), default=None)

    def spans(self, org, contract_id):
        kinds = {s.kind for s in self.rows if (s.org, s.contract_id) == (org, contract_id)}
        return [(k, min(_start(s) for s in self.rows if s.kind == k), max(_start(s) for s in self.rows if s.kind == k))
                for k in kinds]


def _start(sample):
    return sample.start or sample.at


class FakeFacts:
    """The counting queries, over the fakes' contents."""
    def __init__(self, tickets: FakeTickets, samples: FakeSamples):
        self.tickets, self.samples = tickets, samples

    def ticket_window(self, org, contract_id, metric_key, period, now):
        clocks = [c for (cid, _, key), c in self.tickets.clocks.items()
                  if (cid, key, c.period) == (contract_id, metric_key, period)]
        breached = [c for c in clocks if c.breached_at is not None and c.breached_at <= now]
        risky = [c for c in clocks if c.state in ("running", "paused") and c.at_risk_at is not None
                 and c.at_risk_at <= now and c not in breached]
        return len(clocks), len(risky), breached

    def _of(self, org, contract_id, metric_key, kind):
        return [s for s in self.samples.rows if (s.org, s.contract_id) == (org, contract_id) and s.kind == kind
                and s.metric_key in (None, metric_key)]

    def sample_sums(self, org, contract_id, metric_key, sample_kind, start, end):
        rows = [s for s in self._of(org, contract_id, metric_key, sample_kind) if start <= _start(s) < end]
        total = lambda name: sum(getattr(s, name) or 0 for s in rows)   # noqa: E731
        return (total("offered"), total("answered_within_threshold"), total("abandoned"), total("responses"),
                total("score_sum"), total("contacts"), total("resolved_first_contact"))

    def availability(self, org, contract_id, metric_key, start, end):
        return [(s.start, s.end, s.state) for s in self._of(org, contract_id, metric_key, "availability")
                if s.start < end and (s.end is None or s.end > start)]

    def report_delivered_at(self, org, contract_id, metric_key, report_period):
        return min((_start(s) for s in self._of(org, contract_id, metric_key, "report_delivered")
                    if s.report_period == report_period), default=None)


class FakeWindows:
    def __init__(self):
        self.rows: dict[tuple, WindowStanding] = {}

    def get_or_add(self, org, contract_id, metric_key, period, now):
        found = self.rows.setdefault((contract_id, metric_key, period),
                                     WindowStanding(new_id(), org, contract_id, metric_key, period))
        return dataclasses.replace(found, events=[])

    def save(self, standing, now):
        self.rows[(standing.contract_id, standing.metric_key, standing.period)] = dataclasses.replace(standing, events=[])

    def raise_status(self, org, contract_id, metric_key, period, status, from_statuses):
        w = self.rows.get((contract_id, metric_key, period))
        if w is not None and w.status in from_statuses:
            w.status = status

    def delete(self, org, contract_id, metric_key, periods):
        for k in [k for k in self.rows if k[0] == contract_id and k[1] == metric_key and k[2] in periods]:
            del self.rows[k]

    def status(self, metric_key, period="2026-10"):
        return self.rows[("c1", metric_key, period)].status


class FakePeriods:
    def __init__(self):
        self.rows: dict[tuple, Month] = {}

    def open(self, org, contract_id, period, starts_at, ends_at):
        self.rows.setdefault((contract_id, period), Month(new_id(), org, contract_id, period, starts_at, ends_at))

    def periods(self, org, contract_id, status):
        return [m.period for (cid, _), m in self.rows.items() if cid == contract_id and m.status == status]

    def closed_for_update(self, org, contract_id, periods):
        return [dataclasses.replace(m, events=[]) for (cid, p), m in sorted(self.rows.items())
                if cid == contract_id and p in periods and m.status == "closed"]

    def save(self, month):
        self.rows[(month.contract_id, month.period)] = dataclasses.replace(month, events=[])

    def due(self, now, limit):
        return [(m.id, m.org, m.contract_id) for m in sorted(self.rows.values(), key=lambda m: m.ends_at)
                if m.status == "open" and m.ends_at <= now][:limit]

    def claim(self, period_id, now):
        month = next((m for m in self.rows.values() if m.id == period_id and m.status == "open"), None)
        if month is None:
            return None
        month.status = "closed"
        return dataclasses.replace(month, events=[])

    def next_due(self):
        return min((m.ends_at for m in self.rows.values() if m.status == "open"), default=None)


class FakeUnitOfWork:
    """Duck-typed `SlaUnitOfWork`: the same repositories, in memory; nesting and commits are counted."""

    def __init__(self, now: dt.datetime = NOW):
        self.definitions = FakeDefinitions()
        self.timers = FakeTimers()
        self.tickets = FakeTickets(self.timers)
        self.samples = FakeSamples()
        self.windows = FakeWindows()
        self.periods = FakePeriods()
        self.facts = FakeFacts(self.tickets, self.samples)
        # shared.idempotency.once reads uow.session / uow.idempotency_keys only for a request with a key
        self.session = self.idempotency_keys = None
        self.clock = lambda: now
        self.commits, self.events, self._tracked, self._depth = 0, [], [], 0

    def __enter__(self):
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1

    def collect(self, *aggregates):
        self._tracked.extend(a for a in aggregates if a is not None)

    def emit(self, payload):
        self.events.append(payload)

    def commit(self):
        for aggregate in self._tracked:
            while aggregate.events:
                self.events.append(aggregate.events.pop(0))
        self._tracked.clear()
        self.commits += 1

    def flush(self):
        pass

    @property
    def committed(self) -> bool:
        return self.commits > 0

    def of_type(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def defined(uow: FakeUnitOfWork | None = None, **kw) -> FakeUnitOfWork:
    uow = uow or FakeUnitOfWork()
    service_layer.apply_contract_terms(uow, terms(**kw), NOW)
    uow.events.clear()
    uow.commits = 0
    return uow


def interval(source: str, offered: int, answered: int, at: dt.datetime = NOW - dt.timedelta(hours=1),
             contract_id: str = "c1") -> MetricSampleRecorded:
    return MetricSampleRecorded(contract_id=contract_id, org="acme", source_id=source, kind="interval_stats",
                                start=at, end=at + dt.timedelta(minutes=30), offered=offered,
                                answered_within_threshold=answered)


def opened(ticket: str, at: dt.datetime, source: str | None = None) -> TicketEventRecorded:
    return TicketEventRecorded(contract_id="c1", org="acme", source_id=source or f"{ticket}-open", ticket_id=ticket,
                               kind="opened", at=at, priority="P1")


# --- definitions -----------------------------------------------------------------------------------

def test_contract_terms_create_the_definition_and_open_its_month():
    uow = FakeUnitOfWork()
    definition = service_layer.apply_contract_terms(uow, terms(), NOW)
    assert uow.committed
    assert [type(e) for e in uow.events] == [SlaDefinitionCreated]
    created = uow.events[0]
    assert (created.contract_id, created.contract_version, [m.key for m in created.metrics]) == ("c1", 1, ["p1-res", "sl"])
    assert uow.definitions.get("acme", "c1") == definition
    assert uow.periods.periods("acme", "c1", "open") == ["2026-10"]
    assert uow.windows.status("sl") == "no_data"


def test_the_same_contract_version_again_changes_nothing():
    uow = defined()
    again = service_layer.apply_contract_terms(uow, terms(), NOW)
    assert again.contract_version == 1 and uow.events == []


def test_another_organisations_contract_id_is_refused_and_nothing_is_committed():
    uow = defined()
    with pytest.raises(Conflict):
        service_layer.apply_contract_terms(uow, terms(org="other"), NOW)
    assert not uow.committed and uow.events == []


def test_an_amendment_announces_what_changed_and_forgets_a_removed_metric():
    uow = defined()
    amended = service_layer.apply_contract_terms(uow, terms(version=2, metrics=[P1]), NOW)
    [updated] = uow.of_type(SlaDefinitionUpdated)
    assert (updated.contract_version, updated.previous_version, updated.removed, updated.added) == (2, 1, ["sl"], [])
    assert [m.key for m in amended.metrics] == ["p1-res"]
    assert ("c1", "sl", "2026-10") not in uow.windows.rows


def test_defining_through_the_api_answers_201_then_refuses_the_same_version_then_amends_with_200():
    uow = FakeUnitOfWork()
    proposed = definition_from_terms(terms())
    present = lambda d: {"contract_id": d.contract_id, "version": d.contract_version}   # noqa: E731
    key = IdempotencyKey("acme", "user-1", "POST /v1/sla/definitions", None, {})
    assert service_layer.define_sla(uow, proposed, key, NOW, present) == (201, {"contract_id": "c1", "version": 1})
    with pytest.raises(Conflict):
        service_layer.define_sla(uow, definition_from_terms(terms()), key, NOW, present)
    status, answer = service_layer.define_sla(uow, definition_from_terms(terms(version=2)), key, NOW, present)
    assert (status, answer["version"]) == (200, 2)
    assert [type(e) for e in uow.events] == [SlaDefinitionCreated, SlaDefinitionUpdated]


# --- samples and windows ---------------------------------------------------------------------------

def test_a_service_level_behind_target_mid_month_is_announced_at_risk_once():
    uow = defined()
    assert service_layer.record_samples(uow, "acme", [interval("s1", 100, 60)], NOW) == ["accepted"]
    [at_risk] = uow.of_type(SlaAtRisk)
    assert (at_risk.metric_key, at_risk.period, at_risk.actual) == ("sl", "2026-10", Decimal("0.6"))
    assert uow.windows.status("sl") == "at_risk" and uow.committed
    assert service_layer.record_samples(uow, "acme", [interval("s1", 100, 60)], NOW) == ["duplicate"]
    assert len(uow.of_type(SlaAtRisk)) == 1


def test_a_service_level_back_on_target_is_announced_recovered():
    uow = defined()
    service_layer.record_samples(uow, "acme", [interval("s1", 100, 60)], NOW)
    service_layer.record_samples(uow, "acme", [interval("s2", 300, 300)], NOW)
    [recovered] = uow.of_type(SlaRecovered)
    assert (recovered.previous_status, recovered.status, recovered.actual) == ("at_risk", "ok", Decimal("0.9"))
    assert uow.windows.status("sl") == "ok"


def test_samples_of_a_contract_without_a_definition_are_kept_silently():
    uow = defined()
    assert service_layer.record_samples(uow, "acme", [interval("s9", 10, 1, contract_id="later")], NOW) == ["accepted"]
    assert uow.events == [] and len(uow.samples.rows) == 1 and uow.committed


def test_rest_input_naming_a_contract_without_a_definition_is_not_found():
    uow = defined()
    with pytest.raises(NotFound):
        service_layer.ingest_samples(uow, "acme", [interval("s9", 10, 1, contract_id="nope")], NOW, lambda i: "")
    assert uow.samples.rows == [] and not uow.committed


# --- tickets and timers ----------------------------------------------------------------------------

def test_an_opened_ticket_runs_its_clock_and_arms_its_timers():
    uow = defined()
    assert service_layer.record_ticket_events(uow, "acme", [opened("T1", NOW)], NOW) == ["accepted"]
    clock = uow.tickets.clocks[("c1", "T1", "p1-res")]
    assert (clock.state, clock.deadline) == ("running", NOW + dt.timedelta(minutes=240))
    assert {(t.kind, t.due_at) for t in uow.timers.pending()} == {
        ("at_risk", NOW + dt.timedelta(minutes=192)), ("breach", NOW + dt.timedelta(minutes=240))}
    assert uow.events == []


def test_the_breach_timer_announces_once_and_the_window_then_stands_breached():
    uow = defined()
    service_layer.record_ticket_events(uow, "acme", [opened("T1", NOW)], NOW)
    deadline = NOW + dt.timedelta(minutes=240)
    fired, _ = service_layer.fire_due_timers(lambda: uow, deadline)
    assert fired == 2                                      # the at-risk threshold and the deadline
    [breached] = uow.of_type(SlaBreached)
    assert (breached.ticket_id, breached.breached_at, breached.detected_at) == ("T1", deadline, deadline)
    assert len(uow.of_type(SlaAtRisk)) == 1
    assert uow.windows.status("p1-res") == "breached"
    assert service_layer.fire_due_timers(lambda: uow, deadline + dt.timedelta(seconds=1))[0] == 0
    assert len(uow.of_type(SlaBreached)) == 1


def test_a_late_resolution_before_the_deadline_retracts_a_fired_breach():
    uow = defined()
    service_layer.record_ticket_events(uow, "acme", [opened("T1", NOW)], NOW)
    deadline = NOW + dt.timedelta(minutes=240)
    service_layer.fire_due_timers(lambda: uow, deadline)
    resolved = TicketEventRecorded(contract_id="c1", org="acme", source_id="T1-res", ticket_id="T1", kind="resolved",
                                   at=NOW + dt.timedelta(minutes=100))
    service_layer.record_ticket_events(uow, "acme", [resolved], deadline + dt.timedelta(minutes=5))
    [recovered] = uow.of_type(SlaRecovered)
    assert (recovered.ticket_id, recovered.previous_status, recovered.status) == ("T1", "breached", "ok")
    assert [t.status for t in uow.timers.rows.values() if t.kind == "breach"] == ["retracted"]


# --- closing a month -------------------------------------------------------------------------------

def test_a_month_closes_with_its_compliance_and_credit_and_the_next_one_opens():
    uow = defined()
    service_layer.record_samples(uow, "acme", [interval("s1", 100, 60)], NOW)
    ends = Period(2026, 10).ends_at("Asia/Shanghai")
    assert service_layer.close_due_periods(lambda: uow, ends)[0] == 1
    [closed] = uow.of_type(SlaPeriodClosed)
    assert (closed.period, closed.revision) == ("2026-10", 1)
    assert {m.key: m.status for m in closed.metrics} == {"p1-res": "no_data", "sl": "breached"}
    [credit] = uow.of_type(SlaCreditAssessed)
    assert (credit.amount, credit.previously_assessed, credit.replaces) == (Decimal("5000.00"), Decimal(0), None)
    assert uow.periods.periods("acme", "c1", "open") == ["2026-11"]
    assert service_layer.close_due_periods(lambda: uow, ends)[0] == 0


def test_late_input_after_the_close_corrects_the_month_with_a_new_revision_and_credit():
    uow = defined()
    service_layer.record_samples(uow, "acme", [interval("s1", 100, 60)], NOW)
    ends = Period(2026, 10).ends_at("Asia/Shanghai")
    service_layer.close_due_periods(lambda: uow, ends)
    first = uow.of_type(SlaCreditAssessed)[0]
    service_layer.record_samples(uow, "acme", [interval("s2", 900, 900)], ends + dt.timedelta(days=2))
    closed = uow.of_type(SlaPeriodClosed)
    assert [c.revision for c in closed] == [1, 2]
    assert {m.key: m.status for m in closed[-1].metrics}["sl"] == "ok"
    correction = uow.of_type(SlaCreditAssessed)[-1]
    assert (correction.amount, correction.previously_assessed, correction.replaces) == (
        Decimal("0.00"), Decimal("5000.00"), first.credit_id)
