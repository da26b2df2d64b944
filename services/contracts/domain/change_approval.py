"""Assessing a change request and deciding on it: the impact assessment, the organisation's
change policy (which steps apply for the request's kinds and cost impact) and the approval chain
of one assessed request, decided step by step in order. The raiser never approves their own
request (four eyes).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.domain.change_requests import ChangeKind
from shared.errors import Conflict, Forbidden

Role = Literal["pm", "legal", "finance", "approver", "vendor", "admin"]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Assessment(BaseModel):
    """The impact assessment entered by an assessor."""
    model_config = _STRICT
    cost: Decimal = Field(decimal_places=2, allow_inf_nan=False)          # may be negative (a saving)
    schedule_days: int = Field(ge=-3650, le=3650)
    risk: Literal["low", "medium", "high"]
    affected_deliverables: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=200)
    affected_services: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=200)
    notes: str | None = Field(default=None, max_length=4000)


class ChangeCondition(BaseModel):
    model_config = _STRICT
    kind: Literal["always", "cost_above", "kinds"] = "always"
    amount: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    kinds: list[ChangeKind] | None = Field(default=None, max_length=10)

    def applies(self, kinds: set[str], cost: Decimal) -> bool:
        if self.kind == "always":
            return True
        if self.kind == "cost_above":
            return abs(cost) > (self.amount or Decimal(0))
        return bool(kinds & set(self.kinds or []))


class ChangeStep(BaseModel):
    model_config = _STRICT
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    roles: list[Role] = Field(min_length=1, max_length=10)
    when: ChangeCondition = ChangeCondition()


class ChangePolicy(BaseModel):
    model_config = _STRICT
    steps: list[ChangeStep] = Field(min_length=1, max_length=20)


DEFAULT_CHANGE_POLICY = ChangePolicy(steps=[
    ChangeStep(key="pm", roles=["pm"]),
    ChangeStep(key="legal", roles=["legal"], when=ChangeCondition(kind="kinds", kinds=["terms", "price"])),
    ChangeStep(key="finance", roles=["finance"], when=ChangeCondition(kind="cost_above", amount=Decimal("100000.00"))),
])


@dataclass
class ChangeReview:
    """The approval chain of one assessed request, decided step by step in order."""
    steps: list[dict]                      # [{"key", "roles"}] the steps that apply
    decisions: list[dict] = field(default_factory=list)

    @classmethod
    def open(cls, policy: ChangePolicy, kinds: set[str], cost: Decimal) -> ChangeReview:
        return cls([{"key": s.key, "roles": list(s.roles)} for s in policy.steps if s.when.applies(kinds, cost)])

    @property
    def pending(self) -> list[dict]:
        done = {d["step"] for d in self.decisions if d["decision"] == "approved"}
        return [s for s in self.steps if s["key"] not in done]

    def approve(self, actor: str, roles: frozenset[str], raised_by: str, at: dt.datetime,
                comment: str | None) -> bool:
        """Record the next step's approval; True when it was the last one."""
        step = self._next(actor, roles, raised_by)
        self.decisions.append({"step": step["key"], "decision": "approved", "by": actor,
                               "at": at.isoformat(), "comment": comment})
        return not self.pending

    def reject(self, actor: str, roles: frozenset[str], raised_by: str, at: dt.datetime, comment: str) -> None:
        step = self._next(actor, roles, raised_by)
        self.decisions.append({"step": step["key"], "decision": "rejected", "by": actor,
                               "at": at.isoformat(), "comment": comment})

    def _next(self, actor: str, roles: frozenset[str], raised_by: str) -> dict:
        if actor == raised_by:
            raise Forbidden("Four eyes: whoever raised a change request cannot decide on it.")
        if not self.pending:
            raise Conflict("Every approval step of this change request is already decided.")
        step = self.pending[0]
        if not (set(step["roles"]) & roles or "admin" in roles):
            raise Forbidden(f"The next step '{step['key']}' needs one of the roles {', '.join(step['roles'])}.",
                            step=step["key"])
        return step

    def to_dict(self) -> dict:
        return {"steps": self.steps, "decisions": self.decisions}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ChangeReview:
        data = data or {}
        return cls(list(data.get("steps", [])), list(data.get("decisions", [])))
