"""An SLA definition: the service levels a contract version promises, each linked back to the
clause and the contract version it was written in."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import Invalid, field_error
from shared.events.contracts import ContractTerms, ServiceHours, SlaMetric, SlaTerms
from shared.events.sla import MetricSummary, SlaDefinitionCreated, SlaDefinitionUpdated

TICKET_KINDS = frozenset({"first_response", "resolution"})
SHARE_KINDS = frozenset({"service_level", "abandonment_rate", "availability", "first_contact_resolution"})


@dataclass(frozen=True)
class MetricDefinition:
    terms: SlaMetric
    contract_version: int          # the version this metric was last written in

    @property
    def key(self) -> str:
        return self.terms.key

    @property
    def kind(self) -> str:
        return self.terms.kind

    @property
    def is_ticket_timer(self) -> bool:
        return self.terms.kind in TICKET_KINDS

    @property
    def allowed_time(self) -> dt.timedelta:
        """Ticket timers: the target is stated in minutes."""
        return dt.timedelta(seconds=float(self.terms.target * 60))


@dataclass(frozen=True)
class Amendment:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def touches_metrics(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class SlaDefinition:
    contract_id: str
    org: str
    contract_version: int
    number: str
    title: str
    currency: str
    monthly_fee: Decimal | None
    effective_date: dt.date
    end_date: dt.date
    service_hours: ServiceHours
    credit_cap_share: Decimal | None
    metrics: tuple[MetricDefinition, ...] = field(default=())
    vendor_party: str | None = None   # the vendor party's credit code: counterparty scoping
    # What happened to the definition, recorded here and written to the outbox by the unit of work.
    events: list = field(default_factory=list, init=False, compare=False, repr=False)

    @property
    def timezone(self) -> str:
        return self.service_hours.timezone

    def metric(self, key: str) -> MetricDefinition | None:
        return next((m for m in self.metrics if m.key == key), None)

    def ticket_metrics(self, priority: str | None) -> list[MetricDefinition]:
        """The timers a ticket of this priority runs (a timer without priority applies to all)."""
        return [m for m in self.metrics if m.is_ticket_timer and m.terms.priority in (None, priority)]

    def window_metrics(self) -> list[MetricDefinition]:
        return [m for m in self.metrics if not m.is_ticket_timer]

    def summaries(self) -> list[MetricSummary]:
        return [MetricSummary(key=m.key, kind=m.kind, label=m.terms.label, target=m.terms.target,
                              priority=m.terms.priority, clause_key=m.terms.clause_key,
                              contract_version=m.contract_version) for m in self.metrics]

    def record_created(self) -> None:
        self.events.append(SlaDefinitionCreated(contract_id=self.contract_id, org=self.org,
                                                contract_version=self.contract_version, metrics=self.summaries()))


def definition_from_terms(terms: ContractTerms) -> SlaDefinition:
    """The definition a contract's terms promise (no metrics when the contract promises no service levels)."""
    sla = terms.sla or SlaTerms(service_hours=ServiceHours(hours={d: [("09:00", "18:00")] for d in range(1, 6)}),
                                metrics=[])
    check_sla_terms(sla)
    return SlaDefinition(
        contract_id=terms.contract_id, org=terms.org, contract_version=terms.version, number=terms.number,
        title=terms.title, currency=terms.currency, monthly_fee=terms.monthly_fee,
        effective_date=terms.effective_date, end_date=terms.end_date, service_hours=sla.service_hours,
        credit_cap_share=sla.credit_cap_share,
        metrics=tuple(MetricDefinition(m, terms.version) for m in sla.metrics),
        vendor_party=next((p.credit_code for p in terms.parties if p.role == "vendor"), None),
    )


def amend(current: SlaDefinition, proposed: SlaDefinition) -> tuple[SlaDefinition, Amendment]:
    """The definition after an amendment (recording `sla.definition_updated`): unchanged metrics keep their link
    to the version they came from."""
    old = {m.key: m for m in current.metrics}
    kept, changed = [], []
    for metric in proposed.metrics:
        before = old.get(metric.key)
        if before is not None and before.terms == metric.terms:
            kept.append(before)
        else:
            kept.append(metric)
            if before is not None:
                changed.append(metric.key)
    new_keys = {m.key for m in proposed.metrics}
    amendment = Amendment(added=tuple(m.key for m in proposed.metrics if m.key not in old),
                          removed=tuple(k for k in old if k not in new_keys), changed=tuple(changed))
    amended = replace(proposed, metrics=tuple(kept))
    amended.events.append(SlaDefinitionUpdated(
        contract_id=amended.contract_id, org=amended.org, contract_version=amended.contract_version,
        previous_version=current.contract_version, added=list(amendment.added), removed=list(amendment.removed),
        changed=list(amendment.changed), metrics=amended.summaries()))
    return amended, amendment


def check_sla_terms(sla: SlaTerms, pointer: str = "/sla") -> None:
    """Refuse promises that cannot be measured (each problem named by JSON pointer)."""
    problems = []
    seen: set[str] = set()
    for i, m in enumerate(sla.metrics):
        at = f"{pointer}/metrics/{i}"
        if m.key in seen:
            problems.append(field_error(f"{at}/key", f"duplicate metric key {m.key!r}"))
        seen.add(m.key)
        if m.target < 0:
            problems.append(field_error(f"{at}/target", "must not be negative"))
        if m.kind in TICKET_KINDS and m.target <= 0:
            problems.append(field_error(f"{at}/target", "minutes allowed must be positive"))
        if m.kind in SHARE_KINDS and m.target > 1:
            problems.append(field_error(f"{at}/target", "a share is written as a fraction, e.g. 0.8"))
        if m.kind == "service_level" and not m.threshold_seconds:
            problems.append(field_error(f"{at}/threshold_seconds", "service level needs the answer threshold"))
        if m.kind == "report_delivery" and (m.target < 1 or m.target != m.target.to_integral_value()):
            problems.append(field_error(f"{at}/target", "report delivery target is a working day number, e.g. 5"))
        if not Decimal(0) < m.at_risk_share <= 1:
            problems.append(field_error(f"{at}/at_risk_share", "must be in (0, 1]"))
    if sla.credit_cap_share is not None and sla.credit_cap_share < 0:
        problems.append(field_error(f"{pointer}/credit_cap_share", "must not be negative"))
    problems += service_hours_problems(sla.service_hours, f"{pointer}/service_hours")
    if problems:
        raise Invalid("The SLA terms cannot be measured as written.", errors=problems)


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def service_hours_problems(hours: ServiceHours, pointer: str) -> list[dict]:
    """Service hours every clock and calendar can reckon with: a known time zone and country, ISO weekdays
    1-7, each interval "HH:MM"-"HH:MM" within 00:00-24:00 and not empty or reversed."""
    problems = []
    try:
        ZoneInfo(hours.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(field_error(f"{pointer}/timezone", f"not a known IANA time zone: {hours.timezone!r}"))
    for weekday, intervals in hours.hours.items():
        at = f"{pointer}/hours/{weekday}"
        if not 1 <= weekday <= 7:
            problems.append(field_error(at, "weekdays are ISO 1 (Monday) to 7 (Sunday)"))
            continue
        for n, (start, end) in enumerate(intervals):
            bad = [i for i, text in enumerate((start, end)) if not _HHMM.match(text)]
            problems += [field_error(f"{at}/{n}/{i}", "a time is HH:MM between 00:00 and 24:00") for i in bad]
            if not bad and start >= end:
                problems.append(field_error(f"{at}/{n}", f"interval {start}-{end} is empty or reversed"))
    if not problems:
        problems += _calendar_problems(hours, pointer)
    return problems


def _calendar_problems(hours: ServiceHours, pointer: str) -> list[dict]:
    """What the business calendar itself refuses (an unknown country, overlapping intervals, no hours at all)."""
    from shared.business_calendar import BusinessCalendar

    try:
        BusinessCalendar.from_service_hours(hours)
    except ValueError as exc:
        where = "/country" if "country" in str(exc) else "/hours"
        return [field_error(pointer + where, str(exc))]
    return []
