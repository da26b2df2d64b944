"""What the contracts routes share: the catalogue on the app, the caller's library, a language."""
from __future__ import annotations

from fastapi import Request

from services.contracts import views
from services.contracts.domain.variables import LANGUAGES
from services.contracts.service_layer.catalogue import Catalogue, Library
from shared.auth import Principal, require
from shared.errors import Invalid
from shared.service import runtime_of

READ = require()
LEGAL = require("legal")
ADMIN = require("admin")
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
