"""Events published by the contracts service on `contracts.events`.

`ContractTerms` is the structured form of a contract: the same data the document is
rendered from, carried whole in `contract.signed`, `contract.activated` and
`contract.amended` so that payments and SLA never call the contracts service.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.events.base import EventPayload, Money

TOPIC = "contracts.events"

ContractKind = Literal["software_development", "call_centre", "it_operations", "labour_outsourcing"]
Language = Literal["zh-CN", "en"]


class _Terms(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Party(_Terms):
    role: Literal["client", "vendor"]
    name: str
    address: str | None = None
    representative: str | None = None
    contact: str | None = None
    credit_code: str | None = None  # 统一社会信用代码


class TrancheTrigger(_Terms):
    """What makes a tranche payable."""
    kind: Literal["on_signing", "milestone", "fixed_date", "after_tranche"]
    milestone: str | None = None      # kind == milestone: the milestone key
    date: dt.date | None = None       # kind == fixed_date
    tranche: str | None = None        # kind == after_tranche: the other tranche's key
    days: int | None = None           # kind == after_tranche: calendar days after its trigger


class DueTerm(_Terms):
    days: int
    unit: Literal["calendar_days", "working_days"] = "calendar_days"


class Tranche(_Terms):
    key: str
    label: str
    percent: Decimal
    amount: Money
    trigger: TrancheTrigger
    due: DueTerm
    is_retention: bool = False        # the retained quality-guarantee share (质保金)


class Milestone(_Terms):
    key: str
    label: str
    due_date: dt.date | None = None


class LatePaymentPenalty(_Terms):
    daily_rate: Decimal                # e.g. 0.0005 = 0.05 % of the overdue amount per day
    cap_share: Decimal | None = None   # cap as a share of the contract value, e.g. 0.05


class ServiceHours(_Terms):
    """Opening hours per ISO weekday (1 = Monday). Empty list = closed."""
    timezone: str = "Asia/Shanghai"
    hours: dict[int, list[tuple[str, str]]]  # {1: [("09:00", "18:00")], ...}; "24x7" = 00:00-24:00 every day
    country: str = "CN"                      # public holidays and adjusted working weekends
    closures: list[dt.date] = []             # per-contract extra closures


class CreditTier(_Terms):
    miss_up_to: Decimal | None   # how far below target (absolute share / minutes late ratio); None = any beyond
    share_of_monthly_fee: Decimal


class CreditRule(_Terms):
    mode: Literal["per_breach", "per_window"]
    tiers: list[CreditTier]


SlaMetricKind = Literal[
    "first_response", "resolution", "service_level", "abandonment_rate",
    "availability", "first_contact_resolution", "csat", "report_delivery",
]


class SlaMetric(_Terms):
    """One promised service level.

    `target` means, by kind: first_response / resolution: minutes allowed;
    service_level: share answered within `threshold_seconds` (0.80);
    abandonment_rate: maximum share (0.05); availability: share up (0.999);
    first_contact_resolution: minimum share; csat: minimum score;
    report_delivery: working day N of the next month.
    """
    key: str
    kind: SlaMetricKind
    label: str
    target: Decimal
    priority: Literal["P1", "P2", "P3", "P4"] | None = None
    threshold_seconds: int | None = None
    time_basis: Literal["business", "calendar"] = "business"
    window: Literal["monthly"] = "monthly"
    at_risk_share: Decimal = Decimal("0.8")
    pause_on_customer_wait: bool = True
    restart_on_reopen: bool = False
    credit: CreditRule | None = None
    clause_key: str = "sla.service_levels"


class SlaTerms(_Terms):
    service_hours: ServiceHours
    metrics: list[SlaMetric]
    credit_cap_share: Decimal | None = None  # monthly cap as a share of the monthly fee


class ContractTerms(_Terms):
    contract_id: str
    org: str
    number: str
    version: int
    kind: ContractKind
    language: Language
    title: str
    parties: list[Party]
    currency: str = "CNY"
    total_amount: Money
    monthly_fee: Money | None = None
    effective_date: dt.date
    end_date: dt.date
    tranches: list[Tranche] = []
    milestones: list[Milestone] = []
    warranty_months: int | None = None
    late_payment: LatePaymentPenalty | None = None
    change_response: DueTerm | None = None   # change-control response-time commitment
    renewal_notice_days: int = 30
    sla: SlaTerms | None = None


class _ContractEvent(EventPayload):
    topic = TOPIC
    contract_id: str
    org: str


class ContractDrafted(_ContractEvent):
    event_type = "contract.drafted"
    version: int
    template: str
    language: Language
    title: str


class _LifecycleEvent(_ContractEvent):
    """A step of the lifecycle; number and title ride along so a notification reads without a lookup."""
    version: int
    number: str
    title: str


class ContractSubmitted(_LifecycleEvent):
    event_type = "contract.submitted"
    round: int
    steps: list[str]                 # the approval steps this version needs, in order
    blocking_findings: list[str] = []   # high-severity risk findings that need an override


class ContractApproved(_LifecycleEvent):
    event_type = "contract.approved"
    round: int


class ContractRejected(_LifecycleEvent):
    event_type = "contract.rejected"
    round: int
    step: str
    rejected_by: str
    comment: str


class ContractSignatureRequested(_LifecycleEvent):
    event_type = "contract.signature_requested"
    parties: list[Literal["client", "vendor"]]


class ContractSigned(_ContractEvent):
    event_type = "contract.signed"
    version: int
    terms: ContractTerms
    document_sha256: str | None = None   # SHA-256 of the DOCX as signed, frozen from now on
    signed_on: dt.date | None = None


class ContractActivated(_ContractEvent):
    event_type = "contract.activated"
    version: int
    terms: ContractTerms
    activated_on: dt.date | None = None


class ContractRenewalDue(_LifecycleEvent):
    event_type = "contract.renewal_due"
    end_date: dt.date
    notice_days: int


class ContractExpired(_LifecycleEvent):
    event_type = "contract.expired"
    expired_on: dt.date


class ContractCompleted(_LifecycleEvent):
    event_type = "contract.completed"
    completed_on: dt.date


class ContractAmended(_ContractEvent):
    event_type = "contract.amended"
    version: int
    previous_version: int
    terms: ContractTerms
    delta: dict = {}


class ContractTerminated(_ContractEvent):
    event_type = "contract.terminated"
    terminated_on: dt.date
    reason: str | None = None
