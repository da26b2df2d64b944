"""Assessing a change request and deciding on it: the impact assessment, the organisation's
change policy (which steps apply for the request's kinds and its price change) and the approval
chain of one assessed request, decided step by step in order under the separation of duties of
`duties.py` (the raiser decides nothing, each step its own person, admin only with the step's
role). The price change is computed from the contract before and after the amendment, never
taken from the assessment's declared cost; high-severity risk findings of the amended contract
hold the request until they are overridden with a reason, as for a draft.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.domain.approvals import ensure_override_input
from services.contracts.domain.change_requests import ChangeKind
from services.contracts.domain.duties import (RISK_OVERRIDE, ensure_holds, ensure_not_involved, ensure_one_seat)
from shared.errors import Conflict

Role = Literal["pm", "legal", "finance", "approver", "vendor", "admin"]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Assessment(BaseModel):
    """The impact assessment entered by an assessor (not the raiser). `cost` is their estimate of the
    effort, on the record; the chain follows the price change the amendment computes."""
    model_config = _STRICT
    cost: Decimal = Field(decimal_places=2, allow_inf_nan=False)          # may be negative (a saving)
    schedule_days: int = Field(ge=-3650, le=3650)
    risk: Literal["low", "medium", "high"]
    affected_deliverables: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=200)
    affected_services: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=200)
    notes: str | None = Field(default=None, max_length=4000)


class ChangeCondition(BaseModel):
    """always; cost_above: the price change (up or down) is above `amount`; kinds: one of `kinds`."""
    model_config = _STRICT
    kind: Literal["always", "cost_above", "kinds"] = "always"
    amount: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    kinds: list[ChangeKind] | None = Field(default=None, max_length=10)

    def applies(self, kinds: set[str], price_change: Decimal) -> bool:
        if self.kind == "always":
            return True
        if self.kind == "cost_above":
            return abs(price_change) > (self.amount or Decimal(0))
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


def price_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> Decimal:
    """What an amendment does to the price, from the terms before and after it: the change of the
    total, or of the monthly fee over the months of the term, whichever moves more (negative: a saving).
    A fee is priced over the term because a service contract's total need not follow its fee."""
    total = _amount(after.get("total_amount")) - _amount(before.get("total_amount"))
    fee = _amount(after.get("monthly_fee")) - _amount(before.get("monthly_fee"))
    over_term = fee * _months(after["effective_date"], after["end_date"])
    return max(total, over_term, key=abs)


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _months(start: Any, end: Any) -> int:
    """The calendar months a term touches (1 March 2026 to 28 February 2027: twelve)."""
    first, last = dt.date.fromisoformat(str(start)), dt.date.fromisoformat(str(end))
    return max(1, (last.year - first.year) * 12 + last.month - first.month + 1)


@dataclass
class ChangeReview:
    """The approval chain of one assessed request: its steps, decided in order, and the blocking
    findings of the amended contract, each overridden with a reason."""
    steps: list[dict]                      # [{"key", "roles"}] the steps that apply
    decisions: list[dict] = field(default_factory=list)
    price_change: str | None = None        # what the amendment does to the price (None: assessed before it counted)
    blockers: list[dict] = field(default_factory=list)     # [{"id", "code", "clause", "message"}]
    override_roles: list[str] = field(default_factory=lambda: ["approver"])
    overrides: list[dict] = field(default_factory=list)    # [{"finding", "by", "at", "reason"}]

    @classmethod
    def open(cls, policy: ChangePolicy, kinds: set[str], price_change: Decimal, blockers: Sequence[dict] = (),
             override_roles: Sequence[str] = ("approver",)) -> ChangeReview:
        steps = [{"key": s.key, "roles": list(s.roles)} for s in policy.steps if s.when.applies(kinds, price_change)]
        return cls(steps, price_change=f"{price_change:.2f}", blockers=list(blockers),
                   override_roles=list(override_roles))

    # --- questions

    @property
    def pending(self) -> list[dict]:
        done = {d["step"] for d in self.decisions if d["decision"] == "approved"}
        return [s for s in self.steps if s["key"] not in done]

    def open_blockers(self) -> list[dict]:
        overridden = {o["finding"] for o in self.overrides}
        return [b for b in self.blockers if b["id"] not in overridden]

    @property
    def complete(self) -> bool:
        return not self.pending and not self.open_blockers()

    def seats(self) -> dict[str, str]:
        taken = {o["by"]: RISK_OVERRIDE for o in self.overrides}
        taken.update({d["by"]: d["step"] for d in self.decisions})
        return taken

    # --- decisions

    def approve(self, actor: str, roles: frozenset[str], raised_by: str, at: dt.datetime,
                comment: str | None) -> bool:
        """Record the next step's approval; True when nothing is left (steps and overrides)."""
        step = self._next(actor, roles, raised_by)
        self.decisions.append({"step": step["key"], "decision": "approved", "by": actor,
                               "at": at.isoformat(), "comment": comment})
        return self.complete

    def reject(self, actor: str, roles: frozenset[str], raised_by: str, at: dt.datetime, comment: str) -> None:
        """At the next step, or (every step done) by an override role instead of overriding."""
        if not self.pending and self.open_blockers():
            key = self._overrider(actor, roles, raised_by, "reject it")
        else:
            key = self._next(actor, roles, raised_by)["key"]
        self.decisions.append({"step": key, "decision": "rejected", "by": actor, "at": at.isoformat(),
                               "comment": comment})

    def override(self, actor: str, roles: frozenset[str], raised_by: str, at: dt.datetime, finding: str,
                 reason: str) -> bool:
        """Let a blocking finding of the amended contract pass with a reason; True when nothing is left."""
        self._overrider(actor, roles, raised_by, "override a finding on it")
        ensure_override_input(finding, reason, self.blockers)
        if finding in {o["finding"] for o in self.overrides}:
            raise Conflict(f"Finding '{finding}' is already overridden.")
        self.overrides.append({"finding": finding, "by": actor, "at": at.isoformat(), "reason": reason})
        return self.complete

    def _next(self, actor: str, roles: frozenset[str], raised_by: str) -> dict:
        _independent(actor, raised_by, "decide on it")
        if not self.pending:
            raise Conflict("Every approval step of this change request is already decided; it waits for risk "
                           "overrides." if self.open_blockers() else
                           "Every approval step of this change request is already decided.",
                           open_blockers=[b["id"] for b in self.open_blockers()])
        step = self.pending[0]
        ensure_holds(roles, step["roles"], f"The next step '{step['key']}'", step=step["key"])
        ensure_one_seat(actor, self.seats(), step["key"])
        return step

    def _overrider(self, actor: str, roles: frozenset[str], raised_by: str, what: str) -> str:
        _independent(actor, raised_by, what)
        ensure_holds(roles, self.override_roles, "Overriding a risk finding")
        ensure_one_seat(actor, self.seats(), RISK_OVERRIDE)
        return RISK_OVERRIDE

    # --- storage shape

    def to_dict(self) -> dict:
        return {"steps": self.steps, "decisions": self.decisions, "price_change": self.price_change,
                "blockers": self.blockers, "override_roles": self.override_roles, "overrides": self.overrides}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ChangeReview:
        data = data or {}
        return cls(list(data.get("steps", [])), list(data.get("decisions", [])), data.get("price_change"),
                   list(data.get("blockers", [])), list(data.get("override_roles", ["approver"])),
                   list(data.get("overrides", [])))


def _independent(actor: str, raised_by: str, what: str) -> None:
    ensure_not_involved(actor, {raised_by: "raised a change request"}, what)
