"""HTTP entry points of drafting: templates, the clause library, contracts and their versions,
documents, risk checks and search (thin: parse, authorise, call the service layer, answer).

Roles (admin always passes): `legal` drafts and edits contracts and writes clause versions;
anybody of the organisation (viewer and up) reads. Every query is scoped to the caller's
organisation: another organisation's contract is a 404.

A contract's ETag is its current version (`"3"`). An edit (PUT or PATCH) makes a new immutable
version and must carry `If-Match` with the ETag it was based on: none is 428, a stale one 412.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.contracts.adapters import repository as repo
from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.html_writer import render_html
from services.contracts.adapters.tables import ContractRow, ContractVersionRow
from services.contracts.api.schemas import ClauseDefinitionIn, ClauseVersionIn, DraftIn, PatchIn, ReviseIn
from services.contracts.domain.clauses import ClauseVersion
from services.contracts.domain.lifecycle import Status, allowed_commands
from services.contracts.domain.templates import KINDS
from services.contracts.domain.variables import LANGUAGES, VariableSpec
from services.contracts.service_layer import drafting
from services.contracts.service_layer.lifecycle import contract, document_of, terms_of, version
from shared.auth import Principal, require
from shared.errors import Invalid, NotFound
from shared.pagination import decode_cursor, encode_cursor
from shared.service import once_per_key, runtime_of
from shared.uow import UnitOfWork, utcnow

router = APIRouter(prefix="/v1", tags=["drafting"])

READ = require()
LEGAL = require("legal")
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html; charset=utf-8"
CONTRACT = "/contracts/{contract_id}"
CLAUSE_VERSION = "/clauses/{key}/versions/{number}"


def catalogue(request: Request) -> drafting.Catalogue:
    return request.app.state.catalogue


def _library(request: Request, principal: Principal) -> drafting.Library:
    with runtime_of(request).db.read_session() as session:
        return catalogue(request).of(session, principal.org)


def _language(language: str) -> str:
    if language not in LANGUAGES:
        raise Invalid("Unknown language.", errors=[{"parameter": "language", "in": "query",
                                                     "detail": f"must be one of {', '.join(LANGUAGES)}"}])
    return language


# --- templates ---------------------------------------------------------------------------------

@router.get("/templates")
def list_templates(request: Request, principal: Principal = Depends(READ)):
    """One item per template and language."""
    library = _library(request, principal)
    return {"items": [{"key": t.key, "kind": t.kind, "language": language, "version": str(t.version),
                       "title": t.title[language]}
                      for t in map(library.template, library.template_keys) for language in LANGUAGES]}


@router.get("/templates/{key}")
def get_template(key: str, request: Request, principal: Principal = Depends(READ), language: str = "zh-CN"):
    """The template with its variables as JSON Schema (to build a form from) and sample variables."""
    library = _library(request, principal)
    if key not in library.template_keys:
        raise NotFound(f"No template {key!r}.")
    template = library.template(key)
    language = _language(language)
    return {"key": template.key, "kind": template.kind, "language": language, "version": str(template.version),
            "title": template.title[language],
            "articles": [{"clause": a.clause_key, "title": a.title[language], "version": str(a.clause_version.version),
                          "required": a.slot.required, "when": a.slot.when,
                          "positions": list(a.clause_version.position_keys)} for a in template.articles],
            "variables_schema": template.json_schema(language),
            "sample_variables": drafting.jsonable(template.sample_variables)}


# --- the clause library ------------------------------------------------------------------------

def _spec_json(spec: VariableSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name, "type": spec.type, "label": dict(spec.label)}
    if not spec.required:
        out["required"] = False
    for name in ("min", "max", "item", "min_items"):
        if getattr(spec, name) is not None:
            out[name] = format(getattr(spec, name), "f") if isinstance(getattr(spec, name), Decimal) \
                else getattr(spec, name)
    if spec.values:
        out["values"] = list(spec.values)
    if spec.fields:
        out["fields"] = [_spec_json(f) for f in spec.fields]
    return out


def clause_version_view(v: ClauseVersion, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"clause": v.clause_key, "version": str(v.version), "status": v.status,
                           "positions": [p.key for p in v.positions]}
    if full:
        out.update(notes=v.notes, variables=[_spec_json(s) for s in v.variables],
                   positions=[{"key": p.key, "body": dict(p.body)} for p in v.positions])
    return out


def _clause_view(clause, full: bool) -> dict[str, Any]:
    versions = sorted(clause.versions.values(), key=lambda v: v.version)
    return {"key": clause.key, "title": dict(clause.title),
            "versions": [clause_version_view(v, full) for v in versions]}


@router.get("/clauses")
def list_clauses(request: Request, principal: Principal = Depends(READ)):
    """Every clause with its versions and their status (built in, and the organisation's own)."""
    library = _library(request, principal)
    return {"items": [_clause_view(c, full=False) for c in sorted(library.clauses, key=lambda c: c.key)]}


@router.get("/clauses/{key}")
def get_clause(key: str, request: Request, principal: Principal = Depends(READ)):
    """A clause with every version: variables and the body of each position in both languages."""
    return _clause_view(_library(request, principal).clauses.clause(key), full=True)


@router.get(CLAUSE_VERSION)
def get_clause_version(key: str, number: str, request: Request, principal: Principal = Depends(READ)):
    return clause_version_view(_library(request, principal).clauses.clause(key).version(number))


def _clause_write(request: Request, change) -> ClauseVersion:
    with runtime_of(request).uow() as uow:
        changed = change(uow, catalogue(request))
        uow.commit()
    return changed


@router.post("/clauses/{key}/versions", status_code=201)
def add_clause_version(key: str, body: ClauseVersionIn, request: Request, principal: Principal = Depends(LEGAL)):
    """A new version of a clause for this organisation, in draft until published."""
    definition = body.model_dump(mode="json", exclude={"version"})
    added = _clause_write(request, lambda uow, cat: drafting.add_clause_version(
        uow, cat, principal, key, body.version, definition, utcnow()))
    return JSONResponse(clause_version_view(added), status_code=201,
                        headers={"Location": f"/v1/clauses/{key}/versions/{added.version}"})


@router.put(CLAUSE_VERSION)
def replace_clause_version(key: str, number: str, body: ClauseDefinitionIn, request: Request,
                           principal: Principal = Depends(LEGAL)):
    """Rewrite a draft version; a published one never changes (409)."""
    definition = body.model_dump(mode="json")
    return clause_version_view(_clause_write(request, lambda uow, cat: drafting.replace_clause_draft(
        uow, cat, principal, key, number, definition, utcnow())))


@router.post(CLAUSE_VERSION + "/publish")
def publish_clause_version(key: str, number: str, request: Request, principal: Principal = Depends(LEGAL)):
    """From now on, new drafts whose templates ask for a range holding it get this version."""
    return clause_version_view(_clause_write(request, lambda uow, cat: drafting.publish_clause_version(
        uow, cat, principal, key, number, utcnow())))


@router.post(CLAUSE_VERSION + "/deprecate")
def deprecate_clause_version(key: str, number: str, request: Request, principal: Principal = Depends(LEGAL)):
    """No new draft gets it; contracts drafted from it keep it."""
    return clause_version_view(_clause_write(request, lambda uow, cat: drafting.deprecate_clause_version(
        uow, cat, principal, key, number, utcnow())))


# --- contracts ---------------------------------------------------------------------------------

def contract_view(row: ContractRow, current: ContractVersionRow) -> dict[str, Any]:
    return {"id": row.id, "number": row.number, "title": row.title, "kind": row.kind, "language": row.language,
            "status": row.status, "version": row.version, "etag": drafting.etag(row.version),
            "allowed_transitions": allowed_commands(Status(row.status)),
            "template": {"key": current.template_key, "version": current.template_version},
            "terms": terms_of(row, current).model_dump(mode="json"),
            "deviations": current.deviations, "positions": current.positions,
            "clause_versions": current.clause_versions, "variables": current.variables,
            "created_by": row.created_by, "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat()}


def summary_view(row: ContractRow) -> dict[str, Any]:
    return {"id": row.id, "number": row.number, "title": row.title, "kind": row.kind, "language": row.language,
            "status": row.status, "version": row.version, "client": row.client_name, "vendor": row.vendor_name,
            "currency": row.currency, "total_amount": format(Decimal(row.total_amount).quantize(Decimal("0.01")), "f"),
            "effective_date": row.effective_date.isoformat(), "end_date": row.end_date.isoformat(),
            "created_at": row.created_at.isoformat()}


def version_summary(v: ContractVersionRow) -> dict[str, Any]:
    return {"version": v.version, "template": {"key": v.template_key, "version": v.template_version},
            "language": v.language, "reason": v.reason, "deviations": len(v.deviations or []),
            "docx_sha256": v.docx_sha256, "created_by": v.created_by, "created_at": v.created_at.isoformat()}


def version_view(row: ContractRow, v: ContractVersionRow) -> dict[str, Any]:
    return {**version_summary(v), "contract_id": row.id, "etag": drafting.etag(v.version), "variables": v.variables,
            "values": v.values, "positions": v.positions, "deviations": v.deviations,
            "clause_versions": v.clause_versions, "terms": terms_of(row, v).model_dump(mode="json")}


def _answer(row: ContractRow, current: ContractVersionRow, status: int = 200) -> JSONResponse:
    headers = {"ETag": drafting.etag(row.version)}
    if status == 201:
        headers["Location"] = f"/v1/contracts/{row.id}"
    return JSONResponse(contract_view(row, current), status_code=status, headers=headers)


@router.post("/contracts", status_code=201)
def draft_contract(body: DraftIn, request: Request, principal: Principal = Depends(LEGAL),
                   idempotency_key: str | None = Header(default=None)):
    """Draft a contract from a template: 201 with version 1, or 422 listing every bad variable."""
    library = _library(request, principal)
    wanted = drafting.DraftRequest(body.template, body.language, body.variables, body.positions,
                                   body.template_version)

    def act(uow: UnitOfWork) -> tuple[int, dict]:
        row, first = drafting.draft_contract(uow, library, principal, wanted, utcnow())
        return 201, contract_view(row, first)

    status, answer = once_per_key(request, principal.org, "POST /v1/contracts", idempotency_key,
                                  body.model_dump(mode="json"), act)
    return JSONResponse(answer, status_code=status, headers={"ETag": drafting.etag(answer["version"]),
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
    where = repo.ContractFilter(statuses=tuple(status or ()), kind=kind, language=language, counterparty=counterparty,
                                currency=currency, amount_min=amount_min, amount_max=amount_max,
                                expiring_before=expiring_before, text=q)
    with runtime_of(request).db.read_session() as session:
        rows = repo.search(session, principal.org, where, after, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor([page[-1].created_at.isoformat(), page[-1].id]) if more else None
    return {"items": [summary_view(r) for r in page], "next_cursor": next_cursor}


@router.get(CONTRACT)
def get_contract(contract_id: str, request: Request, principal: Principal = Depends(READ)):
    """The contract at its current version; the ETag is what an edit sends back in If-Match."""
    with runtime_of(request).db.read_session() as session:
        row = contract(session, principal.org, contract_id)
        current = version(session, row, row.version)
    return _answer(row, current)


def _revise(request: Request, principal: Principal, contract_id: str, if_match: str | None,
            edit: drafting.Edit) -> JSONResponse:
    library = _library(request, principal)
    with runtime_of(request).uow() as uow:
        row, new = drafting.revise_contract(uow, library, principal, contract_id, if_match, edit, utcnow())
        answer = _answer(row, new)
        uow.commit()
    return answer


@router.put(CONTRACT)
def replace_contract(contract_id: str, body: ReviseIn, request: Request, principal: Principal = Depends(LEGAL),
                     if_match: str | None = Header(default=None)):
    """A new version from the whole input (draft only, If-Match required)."""
    return _revise(request, principal, contract_id, if_match, drafting.Edit(
        body.variables, body.positions, body.reason, body.template_version))


@router.patch(CONTRACT)
def patch_contract(contract_id: str, body: PatchIn, request: Request, principal: Principal = Depends(LEGAL),
                   if_match: str | None = Header(default=None)):
    """A new version from merge patches of the current variables and positions (draft only, If-Match required)."""
    return _revise(request, principal, contract_id, if_match, drafting.Edit(
        body.variables, body.positions, body.reason, patch=True))


@router.get(CONTRACT + "/versions")
def list_versions(contract_id: str, request: Request, principal: Principal = Depends(READ)):
    with runtime_of(request).db.read_session() as session:
        row = contract(session, principal.org, contract_id)
        versions = repo.versions(session, row.id)
    return {"contract_id": row.id, "current": row.version, "items": [version_summary(v) for v in versions]}


@router.get(CONTRACT + "/versions/{number}")
def get_version(contract_id: str, number: int, request: Request, principal: Principal = Depends(READ)):
    """One version as it was made; versions never change."""
    with runtime_of(request).db.read_session() as session:
        row = contract(session, principal.org, contract_id)
        found = version(session, row, number)
    return JSONResponse(version_view(row, found), headers={"ETag": drafting.etag(found.version)})


@router.get(CONTRACT + "/document", response_class=Response,
            responses={200: {"content": {DOCX: {}, "text/html": {}},
                             "description": "The document; X-Content-SHA256 is the SHA-256 of these bytes."}})
def get_document(contract_id: str, request: Request, principal: Principal = Depends(READ),
                 format: Literal["docx", "html"] = "docx", version_number: int | None = Query(None, alias="version",
                                                                                           ge=1)):
    """The version (default: current) as DOCX, or HTML for a preview; the same version gives the same bytes."""
    with runtime_of(request).db.read_session() as session:
        row = contract(session, principal.org, contract_id)
        found = version(session, row, version_number or row.version)
    document = document_of(found)
    content = render_docx(document) if format == "docx" else render_html(document).encode("utf-8")
    sha256 = hashlib.sha256(content).hexdigest()
    headers = {"ETag": f'"{sha256}"', "X-Content-SHA256": sha256}
    if format == "docx":
        headers["Content-Disposition"] = f'attachment; filename="{row.number}-v{found.version}.docx"'
    return Response(content, media_type=DOCX if format == "docx" else HTML, headers=headers)


@router.get(CONTRACT + "/checks")
def get_checks(contract_id: str, request: Request, principal: Principal = Depends(READ),
               version_number: int | None = Query(None, alias="version", ge=1)):
    """Risk findings of the version (default: current), with the organisation's limits; high severity blocks."""
    with runtime_of(request).db.read_session() as session:
        checked, found = drafting.findings(session, principal.org, contract_id, version_number)
    return {"contract_id": contract_id, "version": checked.version, "items": [f.to_dict() for f in found]}
