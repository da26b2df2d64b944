"""Request bodies of the payments API (responses are built in services/payments/views.py)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from typing import Annotated

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, UrlConstraints


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MilestoneReachIn(_Body):
    note: str | None = Field(default=None, max_length=4000)


class MilestoneSubmitIn(_Body):
    evidence: list[Annotated[AnyUrl, UrlConstraints(max_length=2000)]] = Field(min_length=1, max_length=50,
                                   description="Links to the acceptance evidence (reports, deliveries).")
    note: str | None = Field(default=None, max_length=4000)


class MilestoneAcceptIn(_Body):
    accepted_on: dt.date | None = Field(default=None, description="Date of acceptance (default: today, Asia/Shanghai).")
    comment: str | None = Field(default=None, max_length=4000)


class MilestoneRejectIn(_Body):
    comment: str = Field(min_length=1, max_length=4000)


class InvoiceIn(_Body):
    tranche_id: str = Field(min_length=1, max_length=32)
    issued_on: dt.date | None = Field(default=None, description="Default: today, Asia/Shanghai.")


class PaymentIn(_Body):
    tranche_id: str = Field(min_length=1, max_length=32)
    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=2, description="Yuan and fen, e.g. \"200000.00\".")
    received_on: dt.date
    reference: str = Field(min_length=1, max_length=200, description="The bank's transaction reference.")


class CalendarFeedIn(_Body):
    name: str = Field(default="Qiyue payments", min_length=1, max_length=200)
