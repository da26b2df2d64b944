"""HTTP entry points of the clause library: the clauses as the organisation sees them, and its
own clause versions (add a draft, rewrite it, publish, deprecate).

Roles (admin always passes): `legal` writes clause versions; anybody of the organisation reads.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from services.contracts.api.deps import INTERNAL, LEGAL, catalogue, library
from services.contracts.api.schemas import ClauseDefinitionIn, ClauseVersionIn
from services.contracts.domain.clauses import ClauseVersion
from services.contracts.domain.variables import VariableSpec
from services.contracts.service_layer import clause_versions
from shared.auth import Principal
from shared.service import now_of, runtime_of

router = APIRouter(prefix="/v1", tags=["drafting"])

CLAUSE_VERSION = "/clauses/{key}/versions/{number}"


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
def list_clauses(request: Request, principal: Principal = Depends(INTERNAL)):
    """Every clause with its versions and their status (built in, and the organisation's own)."""
    found = library(request, principal)
    return {"items": [_clause_view(c, full=False) for c in sorted(found.clauses, key=lambda c: c.key)]}


@router.get("/clauses/{key}")
def get_clause(key: str, request: Request, principal: Principal = Depends(INTERNAL)):
    """A clause with every version: variables and the body of each position in both languages."""
    return _clause_view(library(request, principal).clauses.clause(key), full=True)


@router.get(CLAUSE_VERSION)
def get_clause_version(key: str, number: str, request: Request, principal: Principal = Depends(INTERNAL)):
    return clause_version_view(library(request, principal).clauses.clause(key).version(number))


@router.post("/clauses/{key}/versions", status_code=201)
def add_clause_version(key: str, body: ClauseVersionIn, request: Request, principal: Principal = Depends(LEGAL)):
    """A new version of a clause for this organisation, in draft until published."""
    definition = body.model_dump(mode="json", exclude={"version"})
    added = clause_versions.add_clause_version(runtime_of(request).uow(), catalogue(request), principal, key,
                                               body.version, definition, now_of(request))
    return JSONResponse(clause_version_view(added), status_code=201,
                        headers={"Location": f"/v1/clauses/{key}/versions/{added.version}"})


@router.put(CLAUSE_VERSION)
def replace_clause_version(key: str, number: str, body: ClauseDefinitionIn, request: Request,
                           principal: Principal = Depends(LEGAL)):
    """Rewrite a draft version; a published one never changes (409)."""
    return clause_version_view(clause_versions.replace_clause_draft(
        runtime_of(request).uow(), catalogue(request), principal, key, number, body.model_dump(mode="json"),
        now_of(request)))


@router.post(CLAUSE_VERSION + "/publish")
def publish_clause_version(key: str, number: str, request: Request, principal: Principal = Depends(LEGAL)):
    """From now on, new drafts whose templates ask for a range holding it get this version."""
    return clause_version_view(clause_versions.publish_clause_version(
        runtime_of(request).uow(), catalogue(request), principal, key, number, now_of(request)))


@router.post(CLAUSE_VERSION + "/deprecate")
def deprecate_clause_version(key: str, number: str, request: Request, principal: Principal = Depends(LEGAL)):
    """No new draft gets it; contracts drafted from it keep it."""
    return clause_version_view(clause_versions.deprecate_clause_version(
        runtime_of(request).uow(), catalogue(request), principal, key, number, now_of(request)))
