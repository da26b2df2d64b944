"""Events of change requests (变更控制), published by the contracts service on `contracts.events`.

A request's number (CR-3) and title ride along so a notification reads without a lookup; the
amended terms themselves travel in `contract.amended` when a request is implemented.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from shared.events.base import EventPayload
from shared.events.contracts import TOPIC

ChangeKind = Literal["scope", "price", "schedule", "service_levels", "terms"]


class _ChangeRequestEvent(EventPayload):
    topic = TOPIC
    contract_id: str
    org: str
    change_request_id: str
    number: str                       # CR-1, CR-2 ... per contract
    title: str
    kinds: list[ChangeKind]
    base_version: int


class ChangeRequestSubmitted(_ChangeRequestEvent):
    event_type = "change_request.submitted"
    assessment_due_at: dt.datetime    # the change-control clause's response-time commitment


class ChangeRequestAssessed(_ChangeRequestEvent):
    event_type = "change_request.assessed"
    cost: Decimal
    schedule_days: int
    risk: Literal["low", "medium", "high"]
    approval_steps: list[str]


class ChangeRequestApproved(_ChangeRequestEvent):
    event_type = "change_request.approved"


class ChangeRequestRejected(_ChangeRequestEvent):
    event_type = "change_request.rejected"
    rejected_by: str
    comment: str


class ChangeRequestWithdrawn(_ChangeRequestEvent):
    event_type = "change_request.withdrawn"


class ChangeRequestImplemented(_ChangeRequestEvent):
    event_type = "change_request.implemented"
    new_version: int


class ChangeRequestOverdue(_ChangeRequestEvent):
    event_type = "change_request.overdue"
    assessment_due_at: dt.datetime
