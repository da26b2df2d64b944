"""Request bodies of the sla API (responses are the plain dicts of `services.sla.views`)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.contracts import SlaTerms
from shared.events.sla import MetricSampleRecorded, TicketEventRecorded

MAX_BATCH = 5000


class DefinitionIn(BaseModel):
    """An SLA for a contract kept outside Qiyue (contracts managed here arrive by `contract.activated`)."""
    model_config = ConfigDict(extra="forbid")
    contract_id: str = Field(min_length=1, max_length=64)
    version: int = Field(default=1, ge=1)
    number: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=500)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    monthly_fee: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=2)
    effective_date: dt.date
    end_date: dt.date
    sla: SlaTerms
    vendor_party: str | None = Field(default=None, pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$",
                                     description="the vendor's 统一社会信用代码: its users then see this SLA")


class TicketEventIn(TicketEventRecorded):
    """A ticket event as posted; the organisation is the caller's."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    org: str | None = Field(default=None, exclude=True, description="Ignored: the caller's organisation is used.")


class SampleIn(MetricSampleRecorded):
    """A metric sample as posted; the organisation is the caller's."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    org: str | None = Field(default=None, exclude=True, description="Ignored: the caller's organisation is used.")


class TicketEventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[TicketEventIn] = Field(min_length=1, max_length=MAX_BATCH)


class SampleBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[SampleIn] = Field(min_length=1, max_length=MAX_BATCH)


class FeedKeyIn(BaseModel):
    """A feed key for one of the organisation's feeds (ticketing system, call-centre switch, monitor)."""
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="What the feed is, to tell keys apart")
