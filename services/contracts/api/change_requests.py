"""HTTP entry points of change control (变更控制): change requests, their approval, the amendment.

Roles (admin passes the routes): a PM, legal or a vendor user raises and submits a request; a PM,
legal or an approver assesses it, never its raiser; the steps of the organisation's change policy
decide it (PM; legal for price and terms; finance above the price change the amendment makes),
each step by another person, never the raiser, and admin only with the step's role; the approval
policy's override roles (approver) override a blocking finding of the amended contract with a
reason; legal implements an approved request, which makes the amended contract version. Anybody
of the organisation reads. A counterparty (vendor) raises and reads requests on its own company's
contracts only (404 for another's), submits and withdraws only those it raised, and never assesses,
decides or implements; it is not shown the internal review nor the change policy.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.contracts import views
from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.html_writer import render_html
from services.contracts.adapters.redline import render_redline_docx
from services.contracts.api.deps import ADMIN, DOCX, INTERNAL, READ, catalogue, scoped, scoped_request, shown
from services.contracts.domain.change_approval import Assessment, ChangePolicy
from services.contracts.domain.change_requests import ChangeKind, ProposedChange
from services.contracts.service_layer import change_requests as cr_service
from shared.auth import Principal, require, require_internal
from shared.downloads import attachment
from shared.service import now_of, runtime_of

router = APIRouter(prefix="/v1", tags=["change requests"])

RAISE = require("pm", "legal", "vendor")
# assessing, deciding and implementing are the organisation's own acts: never a counterparty's
ASSESS = require_internal("pm", "legal", "approver")
DECIDE = require_internal("pm", "legal", "finance", "approver")
IMPLEMENT = require_internal("legal")
ONE = "/change-requests/{request_id}"
OWN = scoped_request(RAISE, raised_only=True)   # a counterparty submits and withdraws only what it raised


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RaiseIn(_In):
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(min_length=1, max_length=8000)
    reason: str = Field(min_length=1, max_length=4000)
    kinds: list[ChangeKind] = Field(min_length=1, max_length=10)
    changes: ProposedChange
    submit: bool = Field(default=False, description="submit at once (starts the response-time clock)")


class DecisionIn(_In):
    comment: str | None = Field(default=None, max_length=4000)


class RejectIn(_In):
    comment: str = Field(min_length=1, max_length=4000)


class OverrideIn(_In):
    finding: str = Field(min_length=1, max_length=200, description="the finding's id in the review's blockers")
    reason: str = Field(min_length=1, max_length=4000, description="why it may pass (not blank)")


def _run(request: Request, command, *args, library: bool = False) -> dict:
    """One change-request use case on a fresh unit of work (with the catalogue when it drafts)."""
    extra = (catalogue(request),) if library else ()
    result = command(runtime_of(request).uow(), *extra, *args)
    return views.change_request_json(result[0] if isinstance(result, tuple) else result)


@router.post("/contracts/{contract_id}/change-requests", status_code=201)
def raise_request(contract_id: str, body: RaiseIn, request: Request, who: Principal = Depends(scoped(RAISE))):
    """A request against the contract's current version; refused now if it could never apply."""
    return shown(who, views.change_request_json(cr_service.raise_request(
        runtime_of(request).uow(), catalogue(request), who, contract_id, title=body.title,
        description=body.description, reason=body.reason, kinds=list(body.kinds), change=body.changes,
        now=now_of(request), submit_now=body.submit)), "review")


@router.get("/contracts/{contract_id}/change-requests")
def list_requests(contract_id: str, request: Request, who: Principal = Depends(scoped(READ))):
    return {"items": [shown(who, views.change_request_json(cr), "review")
                      for cr in views.change_requests_of(runtime_of(request).db, who.org, contract_id)]}


@router.get(ONE)
def get_request(request_id: str, request: Request, who: Principal = Depends(scoped_request(READ))):
    """The request; a counterparty is not shown the internal review (decisions and their comments)."""
    return shown(who, views.change_request_json(views.change_request(runtime_of(request).db, who.org, request_id)),
                 "review")


@router.post(ONE + "/submit")
def submit(request_id: str, request: Request, who: Principal = Depends(OWN)):
    return shown(who, _run(request, cr_service.submit, who, request_id, now_of(request)), "review")


@router.post(ONE + "/assess")
def assess(request_id: str, body: Assessment, request: Request, who: Principal = Depends(ASSESS)):
    """The impact (cost, schedule days, risk, what it affects); again after a conflicting amendment."""
    return _run(request, cr_service.assess, who, request_id, body, now_of(request), library=True)


@router.post(ONE + "/approve")
def approve(request_id: str, request: Request, who: Principal = Depends(DECIDE),
            body: DecisionIn | None = Body(default=None)):
    return _run(request, cr_service.approve, who, request_id, (body or DecisionIn()).comment, now_of(request))


@router.post(ONE + "/override")
def override(request_id: str, body: OverrideIn, request: Request, who: Principal = Depends(DECIDE)):
    """Let a high-severity finding of the amended contract pass, with a reason (the override roles)."""
    return _run(request, cr_service.override, who, request_id, body.finding, body.reason, now_of(request))


@router.post(ONE + "/reject")
def reject(request_id: str, body: RejectIn, request: Request, who: Principal = Depends(DECIDE)):
    return _run(request, cr_service.reject, who, request_id, body.comment, now_of(request))


@router.post(ONE + "/withdraw")
def withdraw(request_id: str, request: Request, who: Principal = Depends(OWN)):
    return shown(who, _run(request, cr_service.withdraw, who, request_id, now_of(request)), "review")


@router.post(ONE + "/implement")
def implement(request_id: str, request: Request, who: Principal = Depends(IMPLEMENT)):
    """The amended contract version, its amendment and `contract.amended` (409 if it overlaps a newer one)."""
    return _run(request, cr_service.implement, who, request_id, now_of(request), library=True)


@router.get(ONE + "/amendment")
def amendment(request_id: str, request: Request, who: Principal = Depends(scoped_request(READ)),
              format: Literal["docx", "html"] = "docx"):
    """The amendment (补充协议) in the contract's language: what changed, article by article."""
    cr, document, _, _ = views.amendment(runtime_of(request).db, who.org, request_id)
    if format == "html":
        return HTMLResponse(render_html(document))
    return Response(render_docx(document), media_type=DOCX, headers={
        "Content-Disposition": attachment(f"{document.number}-CR-{cr.number}-amendment.docx")})


@router.get(ONE + "/redline")
def redline(request_id: str, request: Request, who: Principal = Depends(scoped_request(READ))):
    """The amended version against the one it replaced, with Word tracked changes."""
    cr, _, old, new = views.amendment(runtime_of(request).db, who.org, request_id)
    return Response(render_redline_docx(old, new, cr.raised_by, cr.updated_at), media_type=DOCX, headers={
        "Content-Disposition": attachment(f"{new.number}-CR-{cr.number}-redline.docx")})


@router.get("/change-policy")
def get_policy(request: Request, who: Principal = Depends(INTERNAL)):
    return views.change_policy(runtime_of(request).db, who.org).model_dump(mode="json")


@router.put("/change-policy")
def put_policy(body: ChangePolicy, request: Request, who: Principal = Depends(ADMIN)):
    """Replace the organisation's change policy; requests already assessed keep their chain."""
    return cr_service.set_policy(runtime_of(request).uow(), who, body, now_of(request)).model_dump(mode="json")
