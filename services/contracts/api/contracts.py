"""HTTP entry points of contracts: drafting, versions, documents, risk checks and search (thin:
parse, authorise, call one use case or view, answer).

Roles (admin always passes): `legal` drafts and edits contracts; anybody of the organisation
(viewer and up) reads. Every query is scoped to the caller's organisation: another
organisation's contract is a 404. A counterparty (the `vendor` role) reads only the contracts
whose vendor party is its token's `party`, another's is a 404 too (`deps.scoped`).

A contract's ETag is its current version (`"3"`). An edit (PUT or PATCH) makes a new immutable
version and must carry `If-Match` with the ETag it was based on: none is 428, a stale one 412.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.contracts import views
from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.html_writer import render_html
from services.contracts.api.deps import DOCX, INTERNAL, LEGAL, READ, catalogue, scoped, shown
from services.contracts.api.schemas import DraftIn, PatchIn, ReviseIn
from services.contracts.domain.contract import document_of, etag
from services.contracts.domain.lifecycle import Status
from services.contracts.domain.templates import KINDS
from services.contracts.domain.variables import LANGUAGES
from services.contracts.service_layer import drafting
from shared.auth import Principal
from shared.downloads import attachment
from shared.errors import Invalid
from shared.idempotency import IdempotencyKey
from shared.pagination import decode_cursor, encode_cursor
from shared.service import now_of, runtime_of

router = APIRouter(prefix="/v1", tags=["drafting"])

HTML = "text/html; charset=utf-8"
CONTRACT = "/contracts/{contract_id}"


def _answer(contract, current, status: int = 200) -> JSONResponse:
    headers = {"ETag": etag(contract.version)}
    if status == 201:
        headers["Location"] = f"/v1/contracts/{contract.id}"
    return JSONResponse(views.contract_json(contract, current), status_code=status, headers=headers)


@router.post("/contracts", status_code=201)
def draft_contract(body: DraftIn, request: Request, principal: Principal = Depends(LEGAL),
                   idempotency_key: str | None = Header(default=None)):
    """Draft a contract from a template: 201 with version 1, or 422 listing every bad variable."""
    wanted = drafting.DraftRequest(body.template, body.language, body.variables, body.positions,
                                   body.template_version)
    key = IdempotencyKey(principal.org, principal.sub, "POST /v1/contracts", idempotency_key,
                         body.model_dump(mode="json"))
    status, answer = drafting.draft_contract(runtime_of(request).uow(), catalogue(request), principal, wanted,
                                             now_of(request), key)
    return JSONResponse(answer, status_code=status, headers={"ETag": etag(answer["version"]),
                                                             "Location": f"/v1/contracts/{answer['id']}"})


@router.get("/contracts")
def search_contracts(request: Request, principal: Principal = Depends(READ),
                     status: list[Status] | None = Query(None, description="Repeat for several."),
                     kind: Literal[KINDS] | None = None, language: Literal[LANGUAGES] | None = None,
                     counterparty: str | None = Query(None, min_length=1, max_length=300),
                     currency: str | None = Query(None, pattern=r"^[A-Z]{3}$"),
                     amount_min: Decimal | None = Query(None, ge=0), amount_max: Decimal | None = Query(None, ge=0),
                     expiring_before: dt.date | None = None,
                     q: str | None = Query(None, min_length=1, max_length=300,
                                           description="Text in the title, project, number or a party's name."),
                     limit: int = Query(50, ge=1, le=200), cursor: str | None = None):
    """The organisation's contracts, newest first, narrowed by every filter given."""
    after = decode_cursor(cursor)
    try:
        after = (dt.datetime.fromisoformat(after[0]), str(after[1])) if after is not None else None
    except (TypeError, ValueError, IndexError, KeyError):
        raise Invalid("The cursor is not one this API issued.", errors=[
            {"parameter": "cursor", "in": "query", "detail": "malformed cursor"}]) from None
    where = views.ContractFilter(statuses=tuple(status or ()), kind=kind, language=language,
                                 counterparty=counterparty, currency=currency, amount_min=amount_min,
                                 amount_max=amount_max, expiring_before=expiring_before, text=q,
                                 vendor_parties=principal.party_scope)
    found = views.search(runtime_of(request).db, principal.org, where, after, limit + 1)
    page, more = found[:limit], len(found) > limit
    next_cursor = encode_cursor([page[-1].created_at.isoformat(), page[-1].id]) if more else None
    return {"items": [views.summary_json(c) for c in page], "next_cursor": next_cursor}


@router.get(CONTRACT)
def get_contract(contract_id: str, request: Request, principal: Principal = Depends(scoped(READ))):
    """The contract at its current version; the ETag is what an edit sends back in If-Match. A counterparty
    is not shown the deviations from the organisation's playbook (its negotiating positions)."""
    contract, current = views.contract(runtime_of(request).db, principal.org, contract_id)
    return JSONResponse(shown(principal, views.contract_json(contract, current), "deviations"),
                        headers={"ETag": etag(contract.version)})


def _revise(request: Request, principal: Principal, contract_id: str, if_match: str | None,
            edit: drafting.Edit) -> JSONResponse:
    return _answer(*drafting.revise_contract(runtime_of(request).uow(), catalogue(request), principal, contract_id,
                                             if_match, edit, now_of(request)))


@router.put(CONTRACT)
def replace_contract(contract_id: str, body: ReviseIn, request: Request, principal: Principal = Depends(scoped(LEGAL)),
                     if_match: str | None = Header(default=None)):
    """A new version from the whole input (draft only, If-Match required)."""
    return _revise(request, principal, contract_id, if_match, drafting.Edit(
        body.variables, body.positions, body.reason, body.template_version))


@router.patch(CONTRACT)
def patch_contract(contract_id: str, body: PatchIn, request: Request, principal: Principal = Depends(scoped(LEGAL)),
                   if_match: str | None = Header(default=None)):
    """A new version from merge patches of the current variables and positions (draft only, If-Match required)."""
    return _revise(request, principal, contract_id, if_match, drafting.Edit(
        body.variables, body.positions, body.reason, patch=True))


@router.get(CONTRACT + "/versions")
def list_versions(contract_id: str, request: Request, principal: Principal = Depends(scoped(READ))):
    contract, versions = views.versions(runtime_of(request).db, principal.org, contract_id)
    return {"contract_id": contract.id, "current": contract.version,
            "items": [shown(principal, views.version_summary_json(v), "deviations") for v in versions]}


@router.get(CONTRACT + "/versions/{number}")
def get_version(contract_id: str, number: int, request: Request, principal: Principal = Depends(scoped(READ))):
    """One version as it was made; versions never change."""
    contract, found = views.contract(runtime_of(request).db, principal.org, contract_id, number)
    return JSONResponse(shown(principal, views.version_json(contract, found), "deviations"),
                        headers={"ETag": etag(found.version)})


@router.get(CONTRACT + "/document", response_class=Response,
            responses={200: {"content": {DOCX: {}, "text/html": {}},
                             "description": "The document; X-Content-SHA256 is the SHA-256 of these bytes."}})
def get_document(contract_id: str, request: Request, principal: Principal = Depends(scoped(READ)),
                 format: Literal["docx", "html"] = "docx", version_number: int | None = Query(None, alias="version",
                                                                                           ge=1)):
    """The version (default: current) as DOCX, or HTML for a preview; the same version gives the same bytes."""
    contract, found = views.contract(runtime_of(request).db, principal.org, contract_id, version_number)
    document = document_of(found)
    content = render_docx(document) if format == "docx" else render_html(document).encode("utf-8")
    sha256 = hashlib.sha256(content).hexdigest()
    headers = {"ETag": f'"{sha256}"', "X-Content-SHA256": sha256}
    if format == "docx":
        headers["Content-Disposition"] = attachment(f"{contract.number}-v{found.version}.docx")
    return Response(content, media_type=DOCX if format == "docx" else HTML, headers=headers)


@router.get(CONTRACT + "/checks")
def get_checks(contract_id: str, request: Request, principal: Principal = Depends(INTERNAL),
               version_number: int | None = Query(None, alias="version", ge=1)):
    """Risk findings of the version (default: current), with the organisation's limits; high severity blocks
    (internal: not for a counterparty)."""
    checked, found = views.findings(runtime_of(request).db, principal.org, contract_id, version_number)
    return {"contract_id": contract_id, "version": checked.version, "items": [f.to_dict() for f in found]}
