"""Request bodies of the drafting API (responses are built in routes.py).

Variables stay a free JSON object here on purpose: the template's schema checks them, all at
once, so a 422 lists every bad one by JSON pointer rather than stopping at the first.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

POSITIONS = ("Per clause key: a position key (\"one_way\"), {\"custom\": {\"zh-CN\": ..., \"en\": ...}} or "
             "{\"omit\": true}; the standard position needs no entry.")

# The most a request may carry, so bad input costs no more than its size (the body cap bounds the rest).
MAX_VARIABLES = 200          # a template's variables, and chosen positions, per draft
MAX_BODY_CHARS = 50_000      # one clause body in one language (the built-in ones stay under 7,000)
MAX_DECLARATION_KEYS = 20    # keys of one variable declaration
Variables = Annotated[dict[str, Any], Field(max_length=MAX_VARIABLES,
                                            description="The template's variables (GET /v1/templates/{key}).")]
Positions = Annotated[dict[str, Any], Field(max_length=MAX_VARIABLES, description=POSITIONS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftIn(_Body):
    template: str = Field(min_length=1, max_length=100, description="A template key from GET /v1/templates.")
    language: str = Field(min_length=1, max_length=10, description="zh-CN or en.")
    variables: Variables
    template_version: str | None = Field(default=None, max_length=40)
    positions: Positions = Field(default_factory=dict)


class ReviseIn(_Body):
    """PUT: the whole input of the new version (what is left out is gone)."""
    variables: Variables
    positions: Positions = Field(default_factory=dict)
    template_version: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=2000, description="Why this version was made.")


class PatchIn(_Body):
    """PATCH: JSON merge patches (RFC 7396) of the current version's variables and positions."""
    variables: Variables | None = None
    positions: Positions | None = None
    reason: str | None = Field(default=None, max_length=2000)


class ClausePositionIn(_Body):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,59}$", description="The first position is `standard`.")
    body: dict[Annotated[str, Field(max_length=10)], Annotated[str, Field(max_length=MAX_BODY_CHARS)]] = Field(
        max_length=2, description="Jinja2 text (sandboxed) per language: zh-CN and en.")


class ClauseDefinitionIn(_Body):
    variables: list[Annotated[dict[str, Any], Field(max_length=MAX_DECLARATION_KEYS)]] = Field(
        default_factory=list, max_length=200,
                                            description="Declarations {name, type, label, required, ...}.")
    positions: list[ClausePositionIn] = Field(min_length=1, max_length=20)
    notes: str = Field(default="", max_length=4000)


class ClauseVersionIn(ClauseDefinitionIn):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Semantic version, e.g. 1.1.0.")
