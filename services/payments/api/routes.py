"""HTTP entry points of the payments service (thin: parse, authorise, call the service layer, answer).

Roles (admin always passes):
- any role reads (viewer and up);
- `pm` logs a milestone as reached and submits it for acceptance;
- `approver` accepts or rejects it: the client's acceptance authority. Whoever submitted a
  milestone cannot decide on it, whatever roles they hold;
- `finance` issues invoices and records payments.
Every query is scoped to the caller's organisation: another organisation's contract is a 404. A
counterparty (vendor) reads only its own company's contracts (the vendor party of the terms
`contract.signed` carried; another's is a 404 too) and not the organisation's reports or calendar.

The iCalendar feed is the one endpoint without a bearer token: calendar apps cannot send one.
A user creates a feed (`POST /v1/calendar-feeds`) and gets a URL holding a random 256-bit
token; only its SHA-256 is stored, the feed shows that user's organisation, and deleting the
feed revokes the URL. An unknown or revoked token answers 404.
"""
from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.payments import service_layer, views
from services.payments.api.schemas import (CalendarFeedIn, InvoiceIn, MilestoneAcceptIn, MilestoneReachIn,
                                           MilestoneRejectIn, MilestoneSubmitIn, PaymentIn)
from shared.auth import Principal, require, require_contract_party, require_internal
from shared.downloads import attachment
from shared.errors import Invalid, field_error
from shared.idempotency import IdempotencyKey
from shared.local_time import local_date
from shared.service import now_of, runtime_of

router = APIRouter(prefix="/v1", tags=["payments"])

READ = require()
PM = require("pm")
CLIENT = require("approver")
FINANCE = require("finance")
INTERNAL = require_internal()   # the organisation's reports and calendar: never a counterparty's
CSV = "text/csv; charset=utf-8"
ICS = "text/calendar; charset=utf-8"


def _not_after_today(value: dt.date | None, today: dt.date, pointer: str) -> None:
    if value is not None and value > today:
        raise Invalid("The date is in the future.", errors=[field_error(pointer, "must not be after today")])


def _db(request: Request):
    return runtime_of(request).db


def _uow(request: Request):
    """A fresh unit of work for one use case (which opens and commits it)."""
    return runtime_of(request).uow()


def _today(request: Request) -> dt.date:
    return local_date(now_of(request))


def _vendor_party(request: Request, org: str, contract_id: str) -> str | None:
    return views.vendor_party_of(_db(request), org, contract_id)


def scoped(dependency):
    """On a `{contract_id}` route: a counterparty reaches only its own company's contracts (404)."""
    return require_contract_party(dependency, _vendor_party)


# --- schedules ---------------------------------------------------------------------------------

@router.get("/payment-schedules")
def list_schedules(request: Request, principal: Principal = Depends(READ),
                   limit: int = Query(50, ge=1, le=200), cursor: str | None = None):
    """The organisation's payment schedules, by contract id."""
    return views.schedules_page(_db(request), principal.org, cursor, limit, principal.party_scope)


@router.get("/payment-schedules/{contract_id}")
def get_schedule(contract_id: str, request: Request, principal: Principal = Depends(scoped(READ))):
    """A contract's schedule, milestones, invoices, payments, credits, late fees and what is due next."""
    return views.schedule_of(_db(request), principal.org, contract_id, _today(request))


@router.get("/payment-schedules/{contract_id}/history")
def get_history(contract_id: str, request: Request, principal: Principal = Depends(scoped(READ))):
    """Tranches replaced by amendments, grouped by the contract version that replaced them."""
    return views.history_of(_db(request), principal.org, contract_id)


@router.get("/payment-schedules/{contract_id}/late-fees")
def get_late_fees(contract_id: str, request: Request, principal: Principal = Depends(scoped(READ)),
                  as_of: dt.date | None = None):
    """Late fees day by day up to `as_of` (default today), with the cap applied. `as_of` may be at most
    3,660 days after the first due date (422 otherwise): one row per day is built."""
    today = _today(request)
    return views.late_fees_of(_db(request), principal.org, contract_id, as_of or today, today)


# --- milestones --------------------------------------------------------------------------------

MILESTONE = "/payment-schedules/{contract_id}/milestones/{key}"


@router.post(MILESTONE + "/reach")
def reach_milestone(contract_id: str, key: str, request: Request, principal: Principal = Depends(scoped(PM)),
                    body: MilestoneReachIn | None = Body(default=None)):
    milestone = service_layer.reach_milestone(_uow(request), principal.org, contract_id, key, principal.sub,
                                              now_of(request), body.note if body else None)
    return views.milestone_view(milestone)


@router.post(MILESTONE + "/submit")
def submit_milestone(contract_id: str, key: str, body: MilestoneSubmitIn, request: Request,
                     principal: Principal = Depends(scoped(PM))):
    milestone = service_layer.submit_milestone(_uow(request), principal.org, contract_id, key, principal.sub,
                                               now_of(request), [str(u) for u in body.evidence], body.note)
    return views.milestone_view(milestone)


@router.post(MILESTONE + "/accept")
def accept_milestone(contract_id: str, key: str, body: MilestoneAcceptIn, request: Request,
                     principal: Principal = Depends(scoped(CLIENT))):
    """The client accepts: the tranches this milestone triggers become due, with their due dates."""
    schedule = service_layer.accept_milestone(_uow(request), principal.org, contract_id, key, principal.sub,
                                              now_of(request), body.accepted_on, body.comment)
    triggered = [views.tranche_view(t) for t in schedule.active_tranches()
                 if t.trigger.kind == "milestone" and t.trigger.milestone == key]
    return {"milestone": views.milestone_view(schedule.milestone(key)), "tranches": triggered}


@router.post(MILESTONE + "/reject")
def reject_milestone(contract_id: str, key: str, body: MilestoneRejectIn, request: Request,
                     principal: Principal = Depends(scoped(CLIENT))):
    milestone = service_layer.reject_milestone(_uow(request), principal.org, contract_id, key, principal.sub,
                                               now_of(request), body.comment)
    return views.milestone_view(milestone)


# --- invoices and payments ---------------------------------------------------------------------

@router.post("/payment-schedules/{contract_id}/invoices", status_code=201)
def issue_invoice(contract_id: str, body: InvoiceIn, request: Request, principal: Principal = Depends(scoped(FINANCE)),
                  idempotency_key: str | None = Header(default=None)):
    """A payment request for what a due tranche still owes, numbered INV-<year>-<nnnnnn> per organisation."""
    now = now_of(request)
    _not_after_today(body.issued_on, local_date(now), "/issued_on")
    key = IdempotencyKey(principal.org, principal.sub, f"POST /v1/payment-schedules/{contract_id}/invoices",
                         idempotency_key, body.model_dump(mode="json"))
    status, answer = service_layer.issue_invoice(_uow(request), key, principal.org, contract_id, body.tranche_id,
                                                 principal.sub, now, body.issued_on)
    return JSONResponse(answer, status_code=status)


@router.get("/invoices")
def list_invoices(request: Request, principal: Principal = Depends(READ), contract_id: str | None = None,
                  limit: int = Query(50, ge=1, le=200), cursor: str | None = None):
    return views.invoices_page(_db(request), principal.org, contract_id, cursor, limit, principal.party_scope)


@router.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: str, request: Request, principal: Principal = Depends(READ)):
    return views.invoice_of(_db(request), principal.org, invoice_id, principal.party_scope)


@router.post("/payment-schedules/{contract_id}/payments", status_code=201)
def record_payment(contract_id: str, body: PaymentIn, request: Request, principal: Principal = Depends(scoped(FINANCE)),
                   idempotency_key: str | None = Header(default=None)):
    """A payment received: partial payments are accepted, more than the tranche owes is refused (422)."""
    now = now_of(request)
    _not_after_today(body.received_on, local_date(now), "/received_on")
    key = IdempotencyKey(principal.org, principal.sub, f"POST /v1/payment-schedules/{contract_id}/payments",
                         idempotency_key, body.model_dump(mode="json"))
    status, answer = service_layer.record_payment(_uow(request), key, principal.org, contract_id, body.tranche_id,
                                                  body.amount, body.received_on, body.reference, principal.sub, now)
    return JSONResponse(answer, status_code=status)


# --- organisation reports ----------------------------------------------------------------------

@router.get("/reports/aging")
def aging(request: Request, principal: Principal = Depends(INTERNAL), as_of: dt.date | None = None):
    """What is payable, by days past due: not yet due, 1–30, 31–60, 61–90, over 90."""
    return views.aging_of(_db(request), principal.org, as_of or _today(request))


@router.get("/reports/aging.csv")
def aging_csv(request: Request, principal: Principal = Depends(INTERNAL), as_of: dt.date | None = None):
    as_of = as_of or _today(request)
    return Response(views.aging_csv_of(_db(request), principal.org, as_of), media_type=CSV,
                    headers={"Content-Disposition": attachment(f"aging-{as_of}.csv")})


@router.get("/reports/cash-flow")
def cash_flow(request: Request, principal: Principal = Depends(INTERNAL), months: int = Query(12, ge=1, le=60)):
    """Expected receipts per month from this month on, plus what is overdue and what has no date yet."""
    return views.cash_flow_of(_db(request), principal.org, _today(request), months)


@router.get("/reports/cash-flow.csv")
def cash_flow_csv(request: Request, principal: Principal = Depends(INTERNAL), months: int = Query(12, ge=1, le=60)):
    today = _today(request)
    return Response(views.cash_flow_csv_of(_db(request), principal.org, today, months), media_type=CSV,
                    headers={"Content-Disposition": attachment(f"cash-flow-{today:%Y-%m}.csv")})


# --- calendar feeds ----------------------------------------------------------------------------

def _feed_url(request: Request, token: str) -> str:
    base = runtime_of(request).settings.public_base_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/calendar/{token}.ics"


@router.post("/calendar-feeds", status_code=201)
def create_feed(request: Request, principal: Principal = Depends(INTERNAL),
                body: CalendarFeedIn | None = Body(default=None)):
    """A calendar subscription URL for the caller; the URL is shown only in this answer."""
    feed, token = service_layer.create_feed(_uow(request), principal.org, principal.sub,
                                            body.name if body else CalendarFeedIn().name, now_of(request))
    return JSONResponse(views.feed_view(feed, _feed_url(request, token)), status_code=201,
                        headers={"Location": f"/v1/calendar-feeds/{feed.id}"})


@router.get("/calendar-feeds")
def list_feeds(request: Request, principal: Principal = Depends(INTERNAL)):
    return views.feeds_of(_db(request), principal.org, principal.sub)


@router.get("/calendar-feeds/{feed_id}")
def get_feed(feed_id: str, request: Request, principal: Principal = Depends(INTERNAL)):
    return views.feed_of(_db(request), principal.org, principal.sub, feed_id)


@router.delete("/calendar-feeds/{feed_id}", status_code=204)
def revoke_feed(feed_id: str, request: Request, principal: Principal = Depends(INTERNAL)):
    """Revoke the feed: its URL stops working."""
    service_layer.revoke_feed(_uow(request), principal.org, principal.sub, feed_id, now_of(request))
    return Response(status_code=204)


@router.get("/calendar/{token}.ics", response_class=Response,
            responses={200: {"content": {"text/calendar": {}}, "description": "An RFC 5545 calendar."}})
def calendar_feed(token: str, request: Request):
    """Upcoming due dates and milestone deadlines of the feed owner's organisation (token in the URL)."""
    body = views.calendar_of(_db(request), token, now_of(request))
    return Response(body, media_type=ICS, headers={"Cache-Control": "private, max-age=300"})
