"""HTTP entry points of the sla service (thin: parse, authorise, call the service layer, answer).

Roles: any role reads; `pm` manages definitions; `pm` and `vendor` report tickets and samples
(admin always). Every query is scoped to the caller's organisation. A counterparty (vendor) reads
only its own company's contracts (the vendor party of the terms `contract.activated` carried;
another's is a 404) and not the organisation's overview, stream or dashboard.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

from fastapi import APIRouter, Depends, Header, Path as PathParam, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from services.sla import service_layer, views
from services.sla.adapters import reports
from services.sla.api.schemas import (DefinitionIn, FeedKeyIn, SampleBatch, SampleIn, TicketEventBatch,
                                      TicketEventIn)
from services.sla.domain.definitions import MetricDefinition, SlaDefinition, check_sla_terms
from services.sla.domain.periods import FIRST_YEAR, LAST_YEAR, PERIOD_PATTERN, Period
from shared.auth import (ANY_ROLE, Principal, current_principal, decode_stream_token, issue_stream_token, require,
                         require_contract_party, require_internal)
from shared.errors import Forbidden, Invalid, NotFound, field_error
from shared.events.sla import MetricSampleRecorded, TicketEventRecorded
from shared.idempotency import IdempotencyKey
from shared.pagination import decode_cursor
from shared.service import now_of, runtime_of

router = APIRouter(prefix="/v1", tags=["sla"])
page_router = APIRouter(include_in_schema=False)

MANAGE = ("pm",)
INGEST = ("pm", "vendor")
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _vendor_party(request: Request, org: str, contract_id: str) -> str | None:
    return views.vendor_party_of(runtime_of(request).db, org, contract_id)


READ = require_contract_party(require(), _vendor_party)   # a counterparty: only its own company's contracts


# --- definitions -------------------------------------------------------------------------------

@router.post("/sla/definitions", status_code=201)
def create_definition(body: DefinitionIn, request: Request, principal: Principal = Depends(require(*MANAGE)),
                      idempotency_key: str | None = Header(default=None)):
    """Define (or, with a higher `version`, amend) the SLA of a contract kept outside Qiyue."""
    _check_definition(body)
    key = IdempotencyKey(principal.org, principal.sub, "POST /v1/sla/definitions", idempotency_key,
                         body.model_dump(mode="json"))
    status, answer = service_layer.define_sla(runtime_of(request).uow(), _proposed(body, principal.org), key,
                                              now_of(request), present=views.definition_view)
    return JSONResponse(answer, status_code=status, headers={"Location": f"/v1/sla/definitions/{body.contract_id}"})


def _check_definition(body: DefinitionIn) -> None:
    if not body.sla.metrics:
        raise Invalid("An SLA needs at least one metric.", errors=[field_error("/sla/metrics", "empty")])
    out_of_range = [field_error(f"/{name}", f"must lie in the years {FIRST_YEAR} to {LAST_YEAR}")
                    for name in ("effective_date", "end_date") if not FIRST_YEAR <= getattr(body, name).year <= LAST_YEAR]
    if out_of_range:
        raise Invalid("The SLA's dates cannot be reckoned with.", errors=out_of_range)
    if body.end_date < body.effective_date:
        raise Invalid("The SLA ends before it starts.", errors=[field_error("/end_date", "before effective_date")])
    check_sla_terms(body.sla)


def _proposed(body: DefinitionIn, org: str) -> SlaDefinition:
    return SlaDefinition(
        contract_id=body.contract_id, org=org, contract_version=body.version, number=body.number, title=body.title,
        currency=body.currency, monthly_fee=body.monthly_fee, effective_date=body.effective_date,
        end_date=body.end_date, service_hours=body.sla.service_hours, credit_cap_share=body.sla.credit_cap_share,
        metrics=tuple(MetricDefinition(m, body.version) for m in body.sla.metrics), vendor_party=body.vendor_party)


@router.get("/sla/definitions")
def list_definitions(request: Request, limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                     principal: Principal = Depends(require())):
    return views.definitions(runtime_of(request).db, principal.org, decode_cursor(cursor), limit,
                             principal.party_scope)


@router.get("/sla/definitions/{contract_id}")
def get_definition(contract_id: str, request: Request, principal: Principal = Depends(READ)):
    return views.definition(runtime_of(request).db, principal.org, contract_id)


# --- ingestion ---------------------------------------------------------------------------------

@router.post("/sla/ticket-events", status_code=201)
def post_ticket_event(body: TicketEventIn, request: Request, principal: Principal = Depends(require(*INGEST))):
    """One ticket event; 201 when new, 200 when its `source_id` was already recorded."""
    [status] = _ingest_tickets(request, principal, [body], pointer=lambda i: "")
    return JSONResponse({"source_id": body.source_id, "status": status}, status_code=201 if status == "accepted" else 200)


@router.post("/sla/ticket-events/batch")
def post_ticket_events(body: TicketEventBatch, request: Request, principal: Principal = Depends(require(*INGEST))):
    """Up to 5,000 ticket events in one transaction, in any order."""
    statuses = _ingest_tickets(request, principal, body.items, pointer=lambda i: f"/items/{i}")
    return _batch_answer(body.items, statuses)


@router.post("/sla/samples", status_code=201)
def post_sample(body: SampleIn, request: Request, principal: Principal = Depends(require(*INGEST))):
    """One metric sample; 201 when new, 200 when its `source_id` was already recorded."""
    [status] = _ingest_samples(request, principal, [body], pointer=lambda i: "")
    return JSONResponse({"source_id": body.source_id, "status": status}, status_code=201 if status == "accepted" else 200)


@router.post("/sla/samples/batch")
def post_samples(body: SampleBatch, request: Request, principal: Principal = Depends(require(*INGEST))):
    """Up to 5,000 metric samples in one transaction, in any order."""
    statuses = _ingest_samples(request, principal, body.items, pointer=lambda i: f"/items/{i}")
    return _batch_answer(body.items, statuses)


def _ingest_tickets(request: Request, principal: Principal, items, pointer) -> list[str]:
    events = [TicketEventRecorded(**item.model_dump(), org=principal.org) for item in items]
    return _ingest(request, principal, events, pointer, service_layer.ingest_ticket_events)


def _ingest_samples(request: Request, principal: Principal, items, pointer) -> list[str]:
    samples = [MetricSampleRecorded(**item.model_dump(), org=principal.org) for item in items]
    return _ingest(request, principal, samples, pointer, service_layer.ingest_samples)


def _ingest(request: Request, principal: Principal, items: list, pointer, ingest) -> list[str]:
    """The use case names every item that cannot be counted (range, counts, timing, unknown contract)."""
    rt = runtime_of(request)
    if principal.counterparty:
        _ensure_own_contracts(rt.db, principal, items, pointer)
    statuses = ingest(rt.uow(), principal.org, items, now_of(request), pointer)
    if rt.scheduler is not None:
        rt.scheduler.wake()   # a deadline may now be sooner than the scheduler's next tick
    return statuses


def _ensure_own_contracts(db, principal: Principal, items: list, pointer) -> None:
    """A vendor reports only on its own company's contracts: another's is answered as a contract
    without an SLA (404 for one item, 422 naming each in a batch), so it learns nothing of it."""
    own = views.contracts_of_parties(db, principal.org, [i.contract_id for i in items], principal.party_scope)
    foreign = [n for n, item in enumerate(items) if item.contract_id not in own]
    if foreign and len(items) == 1:
        raise NotFound(f"No SLA definition for contract {items[0].contract_id}.")
    if foreign:
        raise Invalid("Some items name a contract without an SLA definition.",
                      errors=[field_error(f"{pointer(n)}/contract_id", "no SLA definition for this contract")
                              for n in foreign[:100]])


def _batch_answer(items, statuses: list[str]) -> dict:
    return {"accepted": statuses.count("accepted"), "duplicates": statuses.count("duplicate"),
            "items": [{"source_id": i.source_id, "status": s} for i, s in zip(items, statuses)]}


# --- feed keys (sla.ingest) --------------------------------------------------------------------

ADMIN = ("admin",)


@router.post("/sla/feed-keys", status_code=201)
def create_feed_key(body: FeedKeyIn, request: Request, principal: Principal = Depends(require(*ADMIN))):
    """A key the organisation's feed signs its `sla.ingest` records with. The answer holds the secret: the only
    time it is shown (it is derived again to verify, never stored nor logged)."""
    rt = runtime_of(request)
    key, secret = service_layer.create_feed_key(rt.uow(), principal.org, body.name, principal.sub, now_of(request),
                                                rt.settings.feed_key_master())
    return JSONResponse({**views.feed_key_view(key), "secret": secret}, status_code=201,
                        headers={"Cache-Control": "no-store"})


@router.get("/sla/feed-keys")
def list_feed_keys(request: Request, principal: Principal = Depends(require(*ADMIN))):
    """The organisation's feed keys, revoked ones included; never their secrets."""
    return {"items": [views.feed_key_view(k) for k in service_layer.list_feed_keys(runtime_of(request).uow(),
                                                                                   principal.org)]}


@router.delete("/sla/feed-keys/{key_id}", status_code=204)
def revoke_feed_key(key_id: str, request: Request, principal: Principal = Depends(require(*ADMIN))):
    """Records signed with the key from now on go to the DLQ."""
    service_layer.revoke_feed_key(runtime_of(request).uow(), principal.org, key_id, now_of(request))
    return Response(status_code=204)


# --- dashboards and reports --------------------------------------------------------------------

@router.get("/contracts/{contract_id}/sla")
def contract_sla(contract_id: str, request: Request, principal: Principal = Depends(READ)):
    """Each metric's target, actual so far and compliance; open tickets at risk or breached; past months."""
    return views.contract_sla(runtime_of(request).db, principal.org, contract_id, now_of(request))


@router.get("/contracts/{contract_id}/sla/reports/{period}")
def monthly_report(contract_id: str, request: Request,
                   period: str = PathParam(pattern=PERIOD_PATTERN, description="yyyy-mm, 2000-01 to 2100-12"),
                   format: str | None = Query(None, pattern="^(json|csv|docx)$"),
                   lang: str = Query("zh-CN", pattern="^(zh-CN|en)$"),
                   principal: Principal = Depends(READ)):
    """The month's report as JSON, CSV or DOCX (`format`, or the Accept header), in Chinese or English."""
    report = views.period_report(runtime_of(request).db, principal.org, contract_id, Period.parse(period),
                                 now_of(request))
    chosen = format or _format_from_accept(request.headers.get("accept", ""))
    name = f"sla-{contract_id}-{period}-{lang}"
    if chosen == "csv":
        return Response(reports.to_csv(report, lang), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if chosen == "docx":
        return Response(reports.to_docx(report, lang), media_type=DOCX,
                        headers={"Content-Disposition": f'attachment; filename="{name}.docx"'})
    return report


def _format_from_accept(accept: str) -> str:
    if "text/csv" in accept:
        return "csv"
    if DOCX in accept:
        return "docx"
    return "json"


@router.get("/sla/overview")
def overview(request: Request, principal: Principal = Depends(require_internal())):
    """Every contract of the organisation with this month's standing (the dashboard page reads it)."""
    return {"items": views.overview(runtime_of(request).db, principal.org, now_of(request))}


# --- live stream and page ----------------------------------------------------------------------
#
# EventSource cannot send an Authorization header, so the stream and the page also accept a token
# as `?token=`. A token in a URL can end up in proxy and access logs, browser history and Referer
# headers, so the URL accepts only a stream token: minted by `POST /v1/stream-tokens` from a bearer
# token, a few minutes long (`QIYUE_STREAM_TOKEN_TTL_S`), good for these two read-only routes and
# refused everywhere else. A full bearer token in the URL is refused (401). The page takes the bearer
# token from the address fragment (`/dashboard#token=…`, never sent to a server), keeps it in
# sessionStorage, and mints a fresh stream token whenever its EventSource needs one.

STREAM_POLL_S = 0.25
KEEPALIVE_S = 15.0
# A stream ends after this long and the client reconnects with its Last-Event-ID (nothing is
# lost): connections spread over replicas, and a server shutting down is not held open forever.
STREAM_MAX_S = 60.0
PAGE = Path(__file__).with_name("dashboard.html")


@router.post("/stream-tokens", status_code=201)
def mint_stream_token(request: Request, principal: Principal = Depends(require())):
    """A short-lived token for `/v1/stream?token=` and `/dashboard?token=` only (same user, org and roles)."""
    token, expires = issue_stream_token(principal, request.app.state.settings)
    return {"token": token, "token_type": "stream", "expires_at": _utc(expires),
            "expires_in": max(0, expires - int(time.time()))}


def _utc(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def header_or_query_principal(request: Request, token: str | None = Query(
        None, description="A stream token from POST /v1/stream-tokens, for EventSource clients")) -> Principal:
    if token and not request.headers.get("authorization"):
        principal = decode_stream_token(token, request.app.state.settings)
        request.state.principal = principal
    else:
        principal = current_principal(request)
    if not principal.has(*ANY_ROLE):
        raise Forbidden("This needs a role.")
    if principal.counterparty:   # the organisation's whole stream and dashboard
        raise Forbidden("This is internal to the organisation; a counterparty does not read it.")
    return principal


@router.get("/stream")
async def stream(request: Request, contract_id: str | None = None, last_event_id: str | None = Query(None),
                 last_event_header: str | None = Header(None, alias="Last-Event-ID"),
                 principal: Principal = Depends(header_or_query_principal)):
    """Server-Sent Events: the organisation's SLA events (optionally one contract's), resumable with Last-Event-ID.

    Without Last-Event-ID the stream starts at the present; with it, every later event is replayed first.
    """
    rt = runtime_of(request)
    start = _resume_point(last_event_header or last_event_id)
    if start is None:
        start = await run_in_threadpool(views.last_stream_seq, rt.db)

    async def events():
        last, idle = start, 0.0
        ends = asyncio.get_running_loop().time() + STREAM_MAX_S
        yield "retry: 1000\n\n"
        while asyncio.get_running_loop().time() < ends and not await request.is_disconnected():
            try:
                rows = await run_in_threadpool(views.stream_events_after, rt.db, principal.org, last, contract_id)
            except Exception:
                return   # the service is stopping; the client reconnects with its Last-Event-ID
            for row in rows:
                last = row.seq
                yield f"id: {row.seq}\nevent: {row.event_type}\ndata: {row.body}\n\n"
            idle = 0.0 if rows else idle + STREAM_POLL_S
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"
            if not rows:
                await asyncio.sleep(STREAM_POLL_S)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _resume_point(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise Invalid("Last-Event-ID must be an event id this stream sent.",
                      errors=[{"parameter": "Last-Event-ID", "in": "header", "detail": "not a stream event id"}])
    return int(value)


@page_router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, token: str | None = Query(None, description="A stream token, if any")):
    """Every contract's compliance and live breaches: plain HTML and a little JavaScript.

    The page holds no data (it reads everything with the bearer token from `#token=…`), so it needs
    no token; but a token put in its query must be a stream token, as on the stream."""
    if token:
        decode_stream_token(token, request.app.state.settings)
    return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={
        "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                   "style-src 'self' 'unsafe-inline'; connect-src 'self'",
    })
