"""HTTP entry points of the templates: the list, and one template with its variables as JSON Schema.

Anybody of the organisation (viewer and up) reads; the library is the organisation's own view.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from services.contracts.api.deps import INTERNAL, language_of, library
from services.contracts.domain.variables import LANGUAGES
from services.contracts.service_layer.drafting import jsonable
from shared.auth import Principal
from shared.errors import NotFound

router = APIRouter(prefix="/v1", tags=["drafting"])


@router.get("/templates")
def list_templates(request: Request, principal: Principal = Depends(INTERNAL)):
    """One item per template and language."""
    found = library(request, principal)
    return {"items": [{"key": t.key, "kind": t.kind, "language": language, "version": str(t.version),
                       "title": t.title[language]}
                      for t in map(found.template, found.template_keys) for language in LANGUAGES]}


@router.get("/templates/{key}")
def get_template(key: str, request: Request, principal: Principal = Depends(INTERNAL), language: str = "zh-CN"):
    """The template with its variables as JSON Schema (to build a form from) and sample variables."""
    found = library(request, principal)
    if key not in found.template_keys:
        raise NotFound(f"No template {key!r}.")
    template = found.template(key)
    language = language_of(language)
    return {"key": template.key, "kind": template.kind, "language": language, "version": str(template.version),
            "title": template.title[language],
            "articles": [{"clause": a.clause_key, "title": a.title[language], "version": str(a.clause_version.version),
                          "required": a.slot.required, "when": a.slot.when,
                          "positions": list(a.clause_version.position_keys)} for a in template.articles],
            "variables_schema": template.json_schema(language),
            "sample_variables": jsonable(template.sample_variables_for(language))}
