"""What the contracts routes share: the catalogue on the app, the caller's library, a language."""
from __future__ import annotations

from fastapi import Depends, Request

from services.contracts import views
from services.contracts.domain.variables import LANGUAGES
from services.contracts.service_layer.catalogue import Catalogue, Library
from shared.auth import Principal, require, require_contract_party, require_internal
from shared.errors import Forbidden, Invalid
from shared.service import runtime_of

READ = require()
LEGAL = require_internal("legal")
ADMIN = require_internal("admin")
INTERNAL = require_internal()      # the organisation's own people only: never a counterparty
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue


def library(request: Request, principal: Principal) -> Library:
    return views.library(runtime_of(request).db, catalogue(request), principal.org)


def language_of(language: str) -> str:
    if language not in LANGUAGES:
        raise Invalid("Unknown language.", errors=[{"parameter": "language", "in": "query",
                                                     "detail": f"must be one of {', '.join(LANGUAGES)}"}])
    return language


# --- counterparty scoping: a vendor's user reaches only its own company's contracts ----------------

def _vendor_party(request: Request, org: str, contract_id: str) -> str | None:
    return views.vendor_party_of(runtime_of(request).db, org, contract_id)


def scoped(dependency):
    """`dependency` on a `/contracts/{contract_id}` route, and a counterparty reaches the contract only
    when its vendor party is the token's company: another's answers 404, as if it did not exist."""
    return require_contract_party(dependency, _vendor_party)


def scoped_request(dependency, *, raised_only: bool = False):
    """`dependency` on a `/change-requests/{request_id}` route: a counterparty reaches the requests of
    its own contracts (404 otherwise) and, with `raised_only`, acts only on those it raised (403)."""
    def check(request_id: str, request: Request, principal: Principal = Depends(dependency)) -> Principal:
        if principal.counterparty:
            db = runtime_of(request).db
            cr = views.change_request(db, principal.org, request_id)
            principal.ensure_sees(views.vendor_party_of(db, principal.org, cr.contract_id),
                                  f"change request {request_id}")
            if raised_only and cr.raised_by != principal.sub:
                raise Forbidden("A counterparty acts only on the change requests it raised.")
        return principal
    return check


def shown(principal: Principal, answer: dict, *internal: str) -> dict:
    """The answer, without its `internal` parts when a counterparty reads it."""
    if not principal.counterparty:
        return answer
    return {k: v for k, v in answer.items() if k not in internal}
