"""HTTP entry points of the lifecycle: review and approval, signatures, key dates, compare, audit.

Every transition is an explicit command (`POST /v1/contracts/{id}/<command>`); one the current
state does not allow answers 409 naming the state and the commands allowed in it. Roles (admin
always passes): legal submits, asks for signatures, activates, completes and terminates; the
roles of each approval step (legal, finance, approver by default) decide it; an approver
overrides a blocking risk finding; legal records the client's signature, legal or a vendor user
the vendor's; an organisation admin sets the approval policy. Whoever wrote or submitted a
version never decides on it, each step has its own person, and admin passes these routes but
decides a step only with the step's role (`domain/duties.py`). Anybody of the organisation reads.
A counterparty (vendor) reaches only its own company's contracts (404 for another's), without the
review, the audit trail or the policy.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.contracts import views
from services.contracts.adapters.redline import render_redline_docx
from services.contracts.api.deps import ADMIN, DOCX, INTERNAL, READ, scoped, shown
from services.contracts.domain import lifecycle as states
from services.contracts.domain.approvals import ApprovalPolicy
from services.contracts.domain.compare import compare
from services.contracts.domain.contract import document_of
from services.contracts.service_layer import lifecycle
from shared.auth import Principal, require
from shared.downloads import attachment
from shared.errors import Invalid, NotFound, field_error
from shared.service import now_of, runtime_of

router = APIRouter(prefix="/v1", tags=["lifecycle"])


def may(command: str):
    """Who may give a command, as the lifecycle says (the review narrows approvals to the step's roles),
    on a contract the caller reaches (a counterparty only its own company's)."""
    return scoped(require(*states.COMMANDS[command].roles))

CONTRACT = "/contracts/{contract_id}"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApproveIn(_In):
    step: str | None = Field(default=None, max_length=60, description="the step approved (default: the one waiting)")
    comment: str | None = Field(default=None, max_length=4000)


class RejectIn(_In):
    comment: str = Field(min_length=1, max_length=4000, description="what the author must change")


class OverrideIn(_In):
    finding: str = Field(min_length=1, max_length=200, description="the finding's id, e.g. retention_above_limit:-")
    reason: str = Field(min_length=1, max_length=4000)


class SignIn(_In):
    party: Literal["client", "vendor"]
    signatory: str = Field(min_length=1, max_length=300, description="the person who signed, by name")
    method: Literal["handwritten", "company_seal", "electronic"] = "handwritten"


class TerminateIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


def _run(request: Request, command, *args) -> dict:
    """One lifecycle use case on a fresh unit of work, at the app's "now"; the contract's lifecycle view."""
    return views.lifecycle_json(command(runtime_of(request).uow(), *args))


# --- transitions -----------------------------------------------------------------------------------

@router.post(CONTRACT + "/submit")
def submit(contract_id: str, request: Request, who: Principal = Depends(may("submit"))):
    """draft → in_review; the approval steps and blocking findings of this version are fixed now."""
    return _run(request, lifecycle.submit, who, contract_id, now_of(request))


@router.post(CONTRACT + "/approve")
def approve(contract_id: str, request: Request, who: Principal = Depends(may("approve")),
            body: ApproveIn | None = Body(default=None)):
    """Approve the waiting step; after the last step (and every override) the contract is approved."""
    body = body or ApproveIn()
    return _run(request, lifecycle.approve, who, contract_id, now_of(request), body.step, body.comment)


@router.post(CONTRACT + "/reject")
def reject(contract_id: str, body: RejectIn, request: Request, who: Principal = Depends(may("reject"))):
    """Back to draft with the comment."""
    return _run(request, lifecycle.reject, who, contract_id, now_of(request), body.comment)


@router.post(CONTRACT + "/override")
def override(contract_id: str, body: OverrideIn, request: Request, who: Principal = Depends(may("override"))):
    """Let a high-severity risk finding pass, with a reason (the policy's override roles: approver)."""
    return _run(request, lifecycle.override, who, contract_id, now_of(request), body.finding, body.reason)


@router.post(CONTRACT + "/request-signature")
def request_signature(contract_id: str, request: Request, who: Principal = Depends(may("request-signature"))):
    return _run(request, lifecycle.request_signatures, who, contract_id, now_of(request))


@router.post(CONTRACT + "/sign")
def sign(contract_id: str, body: SignIn, request: Request, who: Principal = Depends(may("sign"))):
    """One party's signature (who, when, how); the last one freezes the document's SHA-256."""
    return shown(who, _run(request, lifecycle.sign, who, contract_id, now_of(request), body.party, body.signatory,
                           body.method), "review")


@router.post(CONTRACT + "/activate")
def activate(contract_id: str, request: Request, who: Principal = Depends(may("activate"))):
    """signed → active, from the effective date on (the scheduler does it on that day anyway)."""
    return _run(request, lifecycle.activate, who, contract_id, now_of(request))


@router.post(CONTRACT + "/complete")
def complete(contract_id: str, request: Request, who: Principal = Depends(may("complete"))):
    return _run(request, lifecycle.complete, who, contract_id, now_of(request))


@router.post(CONTRACT + "/terminate")
def terminate(contract_id: str, body: TerminateIn, request: Request, who: Principal = Depends(may("terminate"))):
    return _run(request, lifecycle.terminate, who, contract_id, now_of(request), body.reason)


# --- reading ---------------------------------------------------------------------------------------

@router.get(CONTRACT + "/lifecycle")
def get_lifecycle(contract_id: str, request: Request, who: Principal = Depends(scoped(READ))):
    """State, allowed transitions, the review round with its decisions, every decision ever, signatures.
    A counterparty sees the state and the signatures, not the internal review and its comments."""
    contract, decisions, signatures = views.lifecycle(runtime_of(request).db, who.org, contract_id)
    return shown(who, {**views.lifecycle_json(contract),
            "decisions": [{"round": d.round, "version": d.version, "step": d.step, "decision": d.decision,
                           "finding": d.finding, "by": d.decided_by, "at": d.decided_at.isoformat(),
                           "comment": d.comment} for d in decisions],
            "signatures": [{"party": s.party, "signatory": s.signatory, "method": s.method, "by": s.signed_by,
                            "at": s.signed_at.isoformat(), "version": s.version} for s in signatures]},
                 "review", "decisions")


@router.get(CONTRACT + "/signed-document")
def signed_document(contract_id: str, request: Request, who: Principal = Depends(scoped(READ))):
    """The DOCX exactly as signed; its SHA-256 is the contract's `signed_sha256`."""
    contract, doc = views.signed_document(runtime_of(request).db, who.org, contract_id)
    if doc is None:
        raise NotFound(f"Contract {contract_id} is not signed.")
    return Response(doc.content, media_type=DOCX, headers={
        "ETag": f'"{doc.sha256}"', "Content-Disposition": attachment(f"{contract.number}-signed.docx")})


@router.get(CONTRACT + "/compare")
def compare_versions(contract_id: str, request: Request, who: Principal = Depends(scoped(READ)),
                     from_: int = Query(alias="from", ge=1), to: int = Query(ge=1),
                     format: Literal["json", "docx"] = "json"):
    """Two versions compared: JSON (variables, clauses by key, text by token) or a Word redline."""
    contract, old, new = views.two_versions(runtime_of(request).db, who.org, contract_id, from_, to)
    if format == "json":
        return {"contract_id": contract.id, **compare(views.version_view(old), views.version_view(new))}
    old_doc, new_doc = document_of(old), document_of(new)
    if old_doc.language != new_doc.language:
        raise Invalid("A Word redline compares two versions in the same language.",
                      errors=[field_error("/to", f"version {to} is in {new_doc.language}, "
                                                 f"version {from_} in {old_doc.language}")])
    content = render_redline_docx(old_doc, new_doc, new.created_by, new.created_at)
    return Response(content, media_type=DOCX, headers={
        "Content-Disposition": attachment(f"{contract.number}-v{from_}-v{to}-redline.docx")})


@router.get(CONTRACT + "/audit")
def audit(contract_id: str, request: Request, who: Principal = Depends(INTERNAL)):
    """The contract's hash chain, oldest first, and whether it holds (internal: not for a counterparty)."""
    entries, breaks = views.audit_trail(runtime_of(request).db, who.org, contract_id)
    return {"contract_id": contract_id, "intact": not breaks, "breaks": [str(b) for b in breaks],
            "entries": [{**e.content(), "at": e.at.isoformat(), "entry_hash": e.entry_hash} for e in entries]}


# --- the approval policy ---------------------------------------------------------------------------

@router.get("/approval-policy")
def get_policy(request: Request, who: Principal = Depends(INTERNAL)):
    return views.approval_policy(runtime_of(request).db, who.org).model_dump(mode="json")


@router.put("/approval-policy")
def put_policy(body: ApprovalPolicy, request: Request, who: Principal = Depends(ADMIN)):
    """Replace the organisation's policy; contracts already in review keep the steps they were given."""
    return lifecycle.set_policy(runtime_of(request).uow(), who.org, who.sub, body,
                                now_of(request)).model_dump(mode="json")
