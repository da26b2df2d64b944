"""Events published by the sla service on `sla.events`, and the feeds it reads from `sla.ingest`.

Published (`TOPIC`): a definition's life (`sla.definition_created` / `_updated`), the moments a
promise is in danger or broken (`sla.at_risk`, `sla.breached`, `sla.recovered`), the monthly
close (`sla.period_closed`) and the service credit it earns the client (`sla.credit_assessed`,
read by payments).

Ingested (`INGEST_TOPIC`): what ticketing systems, call-centre switches and monitors report.
Each message carries the source's own id (`source_id`): a redelivery or a re-sent batch is
recognised and ignored; a late message is placed at its own time and the results it touches
are recomputed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events.base import EventPayload, Money

TOPIC = "sla.events"
INGEST_TOPIC = "sla.ingest"   # external ticket and metric feeds
# Each `sla.ingest` record is signed by a feed key of one organisation (`POST /v1/sla/feed-keys`):
# the key's id and HMAC-SHA256(secret, record value) ride in these headers; the org is the key's.
FEED_KEY_HEADER = "qiyue-feed-key"
FEED_SIGNATURE_HEADER = "qiyue-feed-signature"


def feed_signature(secret: str, value: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of the record value (the exact bytes sent) under the key's secret."""
    return "sha256=" + hmac.new(secret.encode(), value, hashlib.sha256).hexdigest()


def sign_feed_record(key_id: str, secret: str, value: bytes) -> list[tuple[str, bytes]]:
    """The headers a feed adds to an `sla.ingest` record it sends with `value`."""
    return [(FEED_KEY_HEADER, key_id.encode()), (FEED_SIGNATURE_HEADER, feed_signature(secret, value).encode())]

Priority = Literal["P1", "P2", "P3", "P4"]
TicketEventKind = Literal["opened", "first_response", "paused", "resumed", "resolved", "reopened"]
SampleKind = Literal["interval_stats", "availability", "survey", "first_contact", "report_delivered"]
MetricStatus = Literal["ok", "at_risk", "breached", "no_data"]


class _SlaEvent(EventPayload):
    topic = TOPIC
    contract_id: str
    org: str


# --- definitions -------------------------------------------------------------------------------

class MetricSummary(BaseModel):
    """One promised level as the sla service understood it, linked to where it was written."""
    model_config = ConfigDict(frozen=True)
    key: str
    kind: str
    label: str
    target: Money
    priority: Priority | None = None
    clause_key: str
    contract_version: int   # the contract version this metric was last written in


class SlaDefinitionCreated(_SlaEvent):
    event_type = "sla.definition_created"
    contract_version: int
    metrics: list[MetricSummary]


class SlaDefinitionUpdated(_SlaEvent):
    event_type = "sla.definition_updated"
    contract_version: int
    previous_version: int
    added: list[str] = []
    removed: list[str] = []
    changed: list[str] = []
    metrics: list[MetricSummary]


# --- moments -----------------------------------------------------------------------------------

class _MetricMoment(_SlaEvent):
    metric_key: str
    metric_kind: str
    period: str                     # the window, "2026-10"
    ticket_id: str | None = None    # set for ticket timers; None for a whole-window metric
    priority: Priority | None = None
    target: Money
    actual: Money | None = None     # share, score or minutes, as the metric's target is stated


class SlaAtRisk(_MetricMoment):
    """A ticket has used `at_risk_share` of its allowed time, or a window metric is below target."""
    event_type = "sla.at_risk"
    at: dt.datetime                 # when the threshold was reached
    deadline: dt.datetime | None = None


class SlaBreached(_MetricMoment):
    event_type = "sla.breached"
    breached_at: dt.datetime        # the deadline that passed (tickets) or when the breach became certain
    detected_at: dt.datetime


class SlaRecovered(_MetricMoment):
    """A breach or risk reported earlier no longer holds (late or corrected input, or the metric came back)."""
    event_type = "sla.recovered"
    previous_status: MetricStatus
    status: MetricStatus


class MetricCompliance(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    kind: str
    label: str
    target: Money
    actual: Money | None = None
    met: bool | None = None         # None: no data in the window
    status: MetricStatus
    items: int = 0                  # tickets, calls offered, responses ... counted in the window
    breaches: int = 0
    clause_key: str
    contract_version: int


class SlaPeriodClosed(_SlaEvent):
    """A month's final compliance; input arriving after the close that changes it closes the month again."""
    event_type = "sla.period_closed"
    period: str
    revision: int = 1               # 1 at the month's end; each correction by late input adds one
    contract_version: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    metrics: list[MetricCompliance]


class SlaCreditAssessed(_SlaEvent):
    """The service credit owed to the client for one month (payments deducts it).

    A correction (late input changed a closed month's credit) carries a new `credit_id`, the month's
    credit as now assessed in `amount`, and what earlier assessments of the month already said in
    `previously_assessed`: only the `difference` is still to deduct (negative: credit to take back).
    """
    event_type = "sla.credit_assessed"
    period: str                     # "2026-10"
    amount: Money                   # the month's whole credit as now assessed
    currency: str
    metric_keys: list[str]
    credit_id: str
    revision: int = 1               # the `sla.period_closed` revision this assessment belongs to
    previously_assessed: Money = Decimal(0)
    replaces: str | None = None     # the credit_id of the assessment this one corrects

    @property
    def difference(self) -> Decimal:
        """What this assessment adds to what the month's earlier assessments already credited."""
        return self.amount - self.previously_assessed


# --- ingestion (INGEST_TOPIC) ------------------------------------------------------------------

class _IngestEvent(EventPayload):
    topic = INGEST_TOPIC
    contract_id: str
    org: str
    source_id: str = Field(min_length=1, max_length=200)   # the source's own id: the idempotency key


class TicketEventRecorded(_IngestEvent):
    """One step in a ticket's life, as the ticketing system saw it."""
    event_type = "ticket.event_recorded"
    ticket_id: str = Field(min_length=1, max_length=200)
    kind: TicketEventKind
    at: AwareDatetime
    priority: Priority | None = None      # required on `opened`; may change on `reopened`


class MetricSampleRecorded(_IngestEvent):
    """One measurement for a window metric.

    By kind: `interval_stats` (start, end, offered, answered_within_threshold, abandoned) feeds
    service level and abandonment; `availability` (start, end, state up/down/maintenance; a `down`
    without `end` is an outage still going on, ended by the next `up` sample's start, and an `up`
    without `end` says the service is up from `start`);
    `survey` (at, score; or responses + score_sum for a batch) feeds CSAT; `first_contact`
    (at, contacts, resolved_first_contact) feeds first-contact resolution; `report_delivered`
    (at, report_period "2026-10") feeds report delivery. `metric_key` narrows a sample to one
    metric when a contract has several of the same kind.
    """
    event_type = "metric.sample_recorded"
    kind: SampleKind
    metric_key: str | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    at: AwareDatetime | None = None
    offered: int | None = Field(default=None, ge=0)
    answered_within_threshold: int | None = Field(default=None, ge=0)
    abandoned: int | None = Field(default=None, ge=0)
    state: Literal["up", "down", "maintenance"] | None = None
    score: Decimal | None = None
    responses: int | None = Field(default=None, ge=1)
    score_sum: Decimal | None = None
    contacts: int | None = Field(default=None, ge=0)
    resolved_first_contact: int | None = Field(default=None, ge=0)
    report_period: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
