"""HTTP entry points of the payments service (thin: parse, authorise, call the service layer, answer).

Roles (admin always passes):
- any role reads (viewer and up);
- `pm` logs a milestone as reached and submits it for acceptance;
- `approver` accepts or rejects it: the client's acceptance authority. Whoever submitted a
  milestone cannot decide on it, whatever roles they hold;
- `finance` issues invoices and records payments.
Every query is scoped to the caller's organisation: another organisation's contract is a 404.

The iCalendar feed is the one endpoint without a bearer token: calendar apps cannot send one.
A user creates a feed (`POST /v1/calendar-feeds`) and gets a URL holding a random 256-bit
token; only its SHA-256 is stored, the feed shows that user's organisation, and deleting the
feed revokes the URL. An unknown or revoked token answers 404.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.payments import service_layer, views
from services.payments.adapters import csv_export, ical
from services.payments.adapters import repository as repo
from services.payments.api.schemas import (CalendarFeedIn, InvoiceIn, MilestoneAcceptIn, MilestoneReachIn,
                                           MilestoneRejectIn, MilestoneSubmitIn, PaymentIn)
from services.payments.domain import reports
from services.payments.domain.due_dates import local_date
from shared.auth import Principal, require
from shared.errors import Invalid, NotFound, field_error
from shared.pagination import decode_cursor, page_of
from shared.service import now_of, once_per_key, runtime_of
from shared.uow import UnitOfWork

router = APIRouter(prefix="/v1", tags=["payments"])

READ = require()
PM = require("pm")
CLIENT = require("approver")
FINANCE = require("finance")
CSV = "text/csv; charset=utf-8"
ICS = "text/calendar; charset=utf-8"


def _not_after_today(value: dt.date | None, today: dt.date, pointer: str) -> None:
    if value is not None and value > today:
        raise Invalid("The date is in the future.", errors=[field_error(pointer, "must not be after today")])


def _schedule(request: Request, principal: Principal, contract_id: str):
    with runtime_of(request).db.read_session() as session:
        schedule = repo.get(session, principal.org, contract_id)
    if schedule is None:
        raise NotFound(f"No payment schedule for contract {contract_id}.")
    return schedule


def _idempotent(request: Request, principal: Principal, scope: str, key: str | None, body: dict,
                act: Callable[[UnitOfWork], tuple[int, dict]]) -> JSONResponse:
    status, answer = once_per_key(request, principal.org, scope, key, body, act)
    return JSONResponse(answer, status_code=status)


# --- schedules ---------------------------------------------------------------------------------

@router.get("/payment-schedules")
def list_schedules(request: Request, principal: Principal = Depends(READ),
                   limit: int = Query(50, ge=1, le=200), cursor: str | None = None):
    """The organisation's payment schedules, by contract id."""
    after = decode_cursor(cursor)
    with runtime_of(request).db.read_session() as session:
        rows = repo.list_rows(session, principal.org, after, limit + 1)
    page, next_cursor = page_of(rows, limit, lambda r: r.contract_id)
    return {"items": [views.schedule_summary(r) for r in page], "next_cursor": next_cursor}


@router.get("/payment-schedules/{contract_id}")
def get_schedule(contract_id: str, request: Request, principal: Principal = Depends(READ)):
    """A contract's schedule, milestones, invoices, payments, credits, late fees and what is due next."""
    return views.schedule_view(_schedule(request, principal, contract_id), local_date(now_of(request)))


@router.get("/payment-schedules/{contract_id}/history")
def get_history(contract_id: str, request: Request, principal: Principal = Depends(READ)):
    """Tranches replaced by amendments, grouped by the contract version that replaced them."""
    return views.history_view(_schedule(request, principal, contract_id))


@router.get("/payment-schedules/{contract_id}/late-fees")
def get_late_fees(contract_id: str, request: Request, principal: Principal = Depends(READ),
                  as_of: dt.date | None = None):
    """Late fees day by day up to `as_of` (default today), with the cap applied."""
    schedule = _schedule(request, principal, contract_id)
    as_of = as_of or local_date(now_of(request))
    return views.late_fees_view(schedule, schedule.late_fees(as_of), as_of)


# --- milestones --------------------------------------------------------------------------------

MILESTONE = "/payment-schedules/{contract_id}/milestones/{key}"


@router.post(MILESTONE + "/reach")
def reach_milestone(contract_id: str, key: str, request: Request, principal: Principal = Depends(PM),
                    body: MilestoneReachIn | None = Body(default=None)):
    rt, now = runtime_of(request), now_of(request)
    with rt.uow() as uow:
        milestone = service_layer.reach_milestone(uow, principal.org, contract_id, key, principal.sub, now,
                                                  body.note if body else None)
        uow.commit()
    return views.milestone_view(milestone)


@router.post(MILESTONE + "/submit")
def submit_milestone(contract_id: str, key: str, body: MilestoneSubmitIn, request: Request,
                     principal: Principal = Depends(PM)):
    rt, now = runtime_of(request), now_of(request)
    with rt.uow() as uow:
        milestone = service_layer.submit_milestone(uow, principal.org, contract_id, key, principal.sub, now,
                                                   [str(u) for u in body.evidence], body.note)
        uow.commit()
    return views.milestone_view(milestone)


@router.post(MILESTONE + "/accept")
def accept_milestone(contract_id: str, key: str, body: MilestoneAcceptIn, request: Request,
                     principal: Principal = Depends(CLIENT)):
    """The client accepts: the tranches this milestone triggers become due, with their due dates."""
    rt, now = runtime_of(request), now_of(request)
    with rt.uow() as uow:
        schedule = service_layer.accept_milestone(uow, principal.org, contract_id, key, principal.sub, now,
                                                  body.accepted_on, body.comment)
        uow.commit()
    triggered = [views.tranche_view(t) for t in schedule.active_tranches()
                 if t.trigger.kind == "milestone" and t.trigger.milestone == key]
    return {"milestone": views.milestone_view(schedule.milestone(key)), "tranches": triggered}


@router.post(MILESTONE + "/reject")
def reject_milestone(contract_id: str, key: str, body: MilestoneRejectIn, request: Request,
                     principal: Principal = Depends(CLIENT)):
    rt, now = runtime_of(request), now_of(request)
    with rt.uow() as uow:
        milestone = service_layer.reject_milestone(uow, principal.org, contract_id, key, principal.sub, now,
                                                   body.comment)
        uow.commit()
    return views.milestone_view(milestone)


# --- invoices and payments ---------------------------------------------------------------------

@router.post("/payment-schedules/{contract_id}/invoices", status_code=201)
def issue_invoice(contract_id: str, body: InvoiceIn, request: Request, principal: Principal = Depends(FINANCE),
                  idempotency_key: str | None = Header(default=None)):
    """A payment request for what a due tranche still owes, numbered INV-<year>-<nnnnnn> per organisation."""
    now = now_of(request)
    _not_after_today(body.issued_on, local_date(now), "/issued_on")

    def act(uow: UnitOfWork) -> tuple[int, dict]:
        _, invoice = service_layer.issue_invoice(uow, principal.org, contract_id, body.tranche_id, principal.sub,
                                                 now, body.issued_on)
        return 201, views.invoice_view(invoice, contract_id)

    return _idempotent(request, principal, f"POST /v1/payment-schedules/{contract_id}/invoices", idempotency_key,
                       body.model_dump(mode="json"), act)


@router.get("/invoices")
def list_invoices(request: Request, principal: Principal = Depends(READ), contract_id: str | None = None,
                  limit: int = Query(50, ge=1, le=200), cursor: str | None = None):
    after = decode_cursor(cursor)
    with runtime_of(request).db.read_session() as session:
        rows = repo.list_invoices(session, principal.org, after, limit + 1, contract_id)
    page, next_cursor = page_of(rows, limit, lambda r: r.number)
    return {"items": [views.invoice_row_view(r) for r in page], "next_cursor": next_cursor}


@router.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: str, request: Request, principal: Principal = Depends(READ)):
    with runtime_of(request).db.read_session() as session:
        row = repo.invoice(session, principal.org, invoice_id)
    if row is None:
        raise NotFound(f"No invoice {invoice_id}.")
    return views.invoice_row_view(row)


@router.post("/payment-schedules/{contract_id}/payments", status_code=201)
def record_payment(contract_id: str, body: PaymentIn, request: Request, principal: Principal = Depends(FINANCE),
                   idempotency_key: str | None = Header(default=None)):
    """A payment received: partial payments are accepted, more than the tranche owes is refused (422)."""
    now = now_of(request)
    _not_after_today(body.received_on, local_date(now), "/received_on")

    def act(uow: UnitOfWork) -> tuple[int, dict]:
        schedule, payment = service_layer.record_payment(uow, principal.org, contract_id, body.tranche_id,
                                                         body.amount, body.received_on, body.reference,
                                                         principal.sub, now)
        return 201, views.payment_view(payment, schedule)

    return _idempotent(request, principal, f"POST /v1/payment-schedules/{contract_id}/payments", idempotency_key,
                       body.model_dump(mode="json"), act)


# --- organisation reports ----------------------------------------------------------------------

def _all_schedules(request: Request, principal: Principal):
    with runtime_of(request).db.read_session() as session:
        return repo.all_of(session, principal.org)


@router.get("/reports/aging")
def aging(request: Request, principal: Principal = Depends(READ), as_of: dt.date | None = None):
    """What is payable, by days past due: not yet due, 1–30, 31–60, 61–90, over 90."""
    as_of = as_of or local_date(now_of(request))
    return views.aging_view(reports.aging(_all_schedules(request, principal), as_of))


@router.get("/reports/aging.csv")
def aging_csv(request: Request, principal: Principal = Depends(READ), as_of: dt.date | None = None):
    as_of = as_of or local_date(now_of(request))
    report = reports.aging(_all_schedules(request, principal), as_of)
    return Response(csv_export.aging_csv(report), media_type=CSV,
                    headers={"Content-Disposition": f'attachment; filename="aging-{as_of}.csv"'})


@router.get("/reports/cash-flow")
def cash_flow(request: Request, principal: Principal = Depends(READ), months: int = Query(12, ge=1, le=60)):
    """Expected receipts per month from this month on, plus what is overdue and what has no date yet."""
    today = local_date(now_of(request))
    lines = reports.cash_flow(_all_schedules(request, principal), today, months)
    return views.forecast_view(lines, today, months)


@router.get("/reports/cash-flow.csv")
def cash_flow_csv(request: Request, principal: Principal = Depends(READ), months: int = Query(12, ge=1, le=60)):
    today = local_date(now_of(request))
    lines = reports.cash_flow(_all_schedules(request, principal), today, months)
    return Response(csv_export.cash_flow_csv(lines), media_type=CSV,
                    headers={"Content-Disposition": f'attachment; filename="cash-flow-{today:%Y-%m}.csv"'})


# --- calendar feeds ----------------------------------------------------------------------------

def _feed_url(request: Request, token: str) -> str:
    base = runtime_of(request).settings.public_base_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/calendar/{token}.ics"


@router.post("/calendar-feeds", status_code=201)
def create_feed(request: Request, principal: Principal = Depends(READ),
                body: CalendarFeedIn | None = Body(default=None)):
    """A calendar subscription URL for the caller; the URL is shown only in this answer."""
    rt, now = runtime_of(request), now_of(request)
    with rt.uow() as uow:
        row, token = service_layer.create_feed(uow, principal.org, principal.sub,
                                               body.name if body else CalendarFeedIn().name, now)
        uow.commit()
    return JSONResponse(views.feed_view(row, _feed_url(request, token)), status_code=201,
                        headers={"Location": f"/v1/calendar-feeds/{row.id}"})


@router.get("/calendar-feeds")
def list_feeds(request: Request, principal: Principal = Depends(READ)):
    with runtime_of(request).db.read_session() as session:
        rows = repo.feeds_of(session, principal.org, principal.sub)
    return {"items": [views.feed_view(r) for r in rows], "next_cursor": None}


@router.get("/calendar-feeds/{feed_id}")
def get_feed(feed_id: str, request: Request, principal: Principal = Depends(READ)):
    with runtime_of(request).db.read_session() as session:
        row = repo.feed(session, principal.org, principal.sub, feed_id)
    if row is None:
        raise NotFound(f"No calendar feed {feed_id}.")
    return views.feed_view(row)


@router.delete("/calendar-feeds/{feed_id}", status_code=204)
def revoke_feed(feed_id: str, request: Request, principal: Principal = Depends(READ)):
    """Revoke the feed: its URL stops working."""
    rt = runtime_of(request)
    with rt.uow() as uow:
        service_layer.revoke_feed(uow, principal.org, principal.sub, feed_id, now_of(request))
        uow.commit()
    return Response(status_code=204)


@router.get("/calendar/{token}.ics", response_class=Response,
            responses={200: {"content": {"text/calendar": {}}, "description": "An RFC 5545 calendar."}})
def calendar_feed(token: str, request: Request):
    """Upcoming due dates and milestone deadlines of the feed owner's organisation (token in the URL)."""
    now = now_of(request)
    with runtime_of(request).db.read_session() as session:
        feed = repo.feed_by_token_hash(session, service_layer.hash_token(token))
        if feed is None:
            raise NotFound("No such calendar feed.")
        schedules = repo.all_of(session, feed.org)
    body = ical.render(schedules, local_date(now), feed.name, now)
    return Response(body, media_type=ICS, headers={"Cache-Control": "private, max-age=300"})
