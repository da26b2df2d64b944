"""Request bodies of the drafting API (responses are built in routes.py).

Variables stay a free JSON object here on purpose: the template's schema checks them, all at
once, so a 422 lists every bad one by JSON pointer rather than stopping at the first.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

POSITIONS = ("Per clause key: a position key (\"one_way\"), {\"custom\": {\"zh-CN\": ..., \"en\": ...}} or "
             "{\"omit\": true}; the standard position needs no entry.")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftIn(_Body):
    template: str = Field(min_length=1, max_length=100, description="A template key from GET /v1/templates.")
    language: str = Field(min_length=1, max_length=10, description="zh-CN or en.")
    variables: dict[str, Any] = Field(description="The template's variables (GET /v1/templates/{key}).")
    template_version: str | None = Field(default=None, max_length=40)
    positions: dict[str, Any] = Field(default_factory=dict, description=POSITIONS)


class ReviseIn(_Body):
    """PUT: the whole input of the new version (what is left out is gone)."""
    variables: dict[str, Any]
    positions: dict[str, Any] = Field(default_factory=dict, description=POSITIONS)
    template_version: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=2000, description="Why this version was made.")


class PatchIn(_Body):
    """PATCH: JSON merge patches (RFC 7396) of the current version's variables and positions."""
    variables: dict[str, Any] | None = None
    positions: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=2000)


class ClausePositionIn(_Body):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,59}$", description="The first position is `standard`.")
    body: dict[str, str] = Field(description="Jinja2 text (sandboxed) per language: zh-CN and en.")


class ClauseDefinitionIn(_Body):
    variables: list[dict[str, Any]] = Field(default_factory=list, max_length=200,
                                            description="Declarations {name, type, label, required, ...}.")
    positions: list[ClausePositionIn] = Field(min_length=1, max_length=20)
    notes: str = Field(default="", max_length=4000)


class ClauseVersionIn(ClauseDefinitionIn):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Semantic version, e.g. 1.1.0.")
