"""Approval policy and the review of one contract version.

An organisation's policy is an ordered list of steps, each with the roles that may decide it
and a condition saying when it applies (legal always; finance above an amount; an approver
when a clause departs from its standard position). When a draft is submitted, the policy is
evaluated against that version once: the steps that apply and the high-severity risk findings
(which block until an approver overrides each with a reason) make up the review. Steps are
decided in order. Four eyes: nobody who wrote a version of the contract decides on it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import Conflict, Forbidden, Invalid, field_error

Role = Literal["legal", "pm", "finance", "approver", "vendor", "viewer", "admin"]
Kind = Literal["software_development", "call_centre", "it_operations", "labour_outsourcing"]


class Condition(BaseModel):
    """When a step applies.

    always: every contract. total_above: the contract value (in its own currency) is above
    `amount`. non_standard_position: some clause uses a fallback or custom position.
    contract_kind: the contract is of one of `kinds`.
    """
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["always", "total_above", "non_standard_position", "contract_kind"] = "always"
    amount: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    kinds: list[Kind] | None = Field(default=None, max_length=10)

    def applies(self, facts: "ReviewFacts") -> bool:
        if self.kind == "always":
            return True
        if self.kind == "total_above":
            return facts.total_amount > (self.amount or Decimal(0))
        if self.kind == "non_standard_position":
            return bool(facts.deviations)
        return facts.kind in (self.kinds or [])

    def reason(self, facts: "ReviewFacts") -> str:
        if self.kind == "total_above":
            return f"contract value {facts.total_amount} is above {self.amount}"
        if self.kind == "non_standard_position":
            return "non-standard clause positions: " + ", ".join(
                f"{d['clause']} ({d['position']})" for d in facts.deviations)
        if self.kind == "contract_kind":
            return f"contract kind {facts.kind}"
        return "always required"


class PolicyStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str | None = Field(default=None, max_length=200)
    roles: list[Role] = Field(min_length=1, max_length=10)
    when: Condition = Condition()


class RiskLimits(BaseModel):
    """Thresholds of the risk checks, in percent (0.05 = 0.05 %)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    retention_max_percent: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    late_payment_daily_rate_max_percent: Decimal = Field(default=Decimal("0.05"), ge=0, le=100)
    late_payment_cap_max_percent: Decimal = Field(default=Decimal("20"), ge=0, le=100)
    credit_cap_max_percent: Decimal = Field(default=Decimal("30"), ge=0, le=100)
    dispatched_share_max_percent: Decimal = Field(default=Decimal("10"), ge=0, le=100)


class ApprovalPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: list[PolicyStep] = Field(min_length=1, max_length=20)
    override_roles: list[Role] = Field(default_factory=lambda: ["approver"], min_length=1, max_length=10)
    risk_limits: RiskLimits = RiskLimits()

    @field_validator("steps")
    @classmethod
    def _unique_keys(cls, steps: list[PolicyStep]) -> list[PolicyStep]:
        keys = [s.key for s in steps]
        if len(keys) != len(set(keys)):
            raise ValueError("step keys must be unique")
        return steps


# Used until an organisation sets its own: legal always; finance above one million; an approver
# for any departure from the standard clauses.
DEFAULT_POLICY = ApprovalPolicy(steps=[
    PolicyStep(key="legal", label="Legal review", roles=["legal"]),
    PolicyStep(key="finance", label="Finance review", roles=["finance"],
               when=Condition(kind="total_above", amount=Decimal("1000000.00"))),
    PolicyStep(key="deviations", label="Approval of non-standard clauses", roles=["approver"],
               when=Condition(kind="non_standard_position")),
])


@dataclass(frozen=True)
class ReviewFacts:
    """What the policy looks at in the version under review."""
    kind: str
    total_amount: Decimal
    deviations: list[dict]          # [{"clause", "position", "kind": fallback|custom}]
    blocking_findings: list[dict]   # high-severity findings: [{"id", "code", "clause", "message"}]


@dataclass
class Decision:
    step: str
    decision: Literal["approved", "rejected"]
    by: str
    at: dt.datetime
    comment: str | None = None


@dataclass
class Override:
    finding: str
    by: str
    at: dt.datetime
    reason: str


@dataclass
class Review:
    """One round of review of one version: from submission to approval or rejection."""
    round: int
    version: int
    steps: list[dict]                # [{"key", "label", "roles", "reason"}], in policy order
    blockers: list[dict]             # high-severity findings to override
    override_roles: list[str]
    decisions: list[Decision] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    outcome: Literal["pending", "approved", "rejected"] = "pending"

    @classmethod
    def open(cls, round_: int, version: int, policy: ApprovalPolicy, facts: ReviewFacts) -> "Review":
        steps = [{"key": s.key, "label": s.label or s.key, "roles": list(s.roles), "reason": s.when.reason(facts)}
                 for s in policy.steps if s.when.applies(facts)]
        return cls(round=round_, version=version, steps=steps, blockers=list(facts.blocking_findings),
                   override_roles=list(policy.override_roles))

    # --- questions

    def approved_steps(self) -> set[str]:
        return {d.step for d in self.decisions if d.decision == "approved"}

    def pending_steps(self) -> list[dict]:
        done = self.approved_steps()
        return [s for s in self.steps if s["key"] not in done]

    def open_blockers(self) -> list[dict]:
        overridden = {o.finding for o in self.overrides}
        return [b for b in self.blockers if b["id"] not in overridden]

    def is_complete(self) -> bool:
        return not self.pending_steps() and not self.open_blockers()

    # --- decisions

    def approve(self, actor: str, roles: frozenset[str], authors: set[str], at: dt.datetime,
                step: str | None = None, comment: str | None = None) -> Decision:
        """Approve the next pending step (steps go in order); the author never approves."""
        _four_eyes(actor, authors, "approve")
        pending = self.pending_steps()
        if not pending:
            raise Conflict("Every approval step is already done; the contract waits for risk overrides.",
                           open_blockers=[b["id"] for b in self.open_blockers()])
        current = pending[0]
        if step is not None and step != current["key"]:
            known = {s["key"] for s in self.steps}
            if step not in known:
                raise Invalid(f"This review has no step '{step}'.",
                              errors=[field_error("/step", f"one of: {', '.join(sorted(known))}")])
            raise Conflict(f"Step '{step}' is not the one waiting; '{current['key']}' comes first.",
                           waiting_step=current["key"])
        if not _holds(roles, current["roles"]):
            raise Forbidden(f"The waiting step '{current['key']}' is decided by: {', '.join(current['roles'])}.",
                            waiting_step=current["key"])
        decision = Decision(current["key"], "approved", actor, at, comment)
        self.decisions.append(decision)
        if self.is_complete():
            self.outcome = "approved"
        return decision

    def reject(self, actor: str, roles: frozenset[str], authors: set[str], at: dt.datetime,
               comment: str) -> Decision:
        """Reject on behalf of the step waiting (or any still pending step the actor may decide)."""
        _four_eyes(actor, authors, "reject")
        candidates = [s for s in self.pending_steps() if _holds(roles, s["roles"])]
        if not candidates and _holds(roles, self.override_roles) and self.open_blockers():
            candidates = [{"key": "risk_override"}]
        if not candidates:
            raise Forbidden("None of the pending steps is decided by your roles.",
                            pending_steps=[s["key"] for s in self.pending_steps()])
        decision = Decision(candidates[0]["key"], "rejected", actor, at, comment)
        self.decisions.append(decision)
        self.outcome = "rejected"
        return decision

    def override(self, actor: str, roles: frozenset[str], authors: set[str], at: dt.datetime,
                 finding: str, reason: str) -> Override:
        """Let a high-severity finding pass, on the record, with a reason."""
        _four_eyes(actor, authors, "override a finding on")
        if not _holds(roles, self.override_roles):
            raise Forbidden(f"Risk findings are overridden by: {', '.join(self.override_roles)}.")
        if finding not in {b["id"] for b in self.blockers}:
            raise Invalid(f"No blocking finding '{finding}' in this review.",
                          errors=[field_error("/finding", "one of: " + ", ".join(b["id"] for b in self.blockers))])
        if finding in {o.finding for o in self.overrides}:
            raise Conflict(f"Finding '{finding}' is already overridden.")
        override = Override(finding, actor, at, reason)
        self.overrides.append(override)
        if self.is_complete():
            self.outcome = "approved"
        return override

    # --- storage shape

    def to_dict(self) -> dict:
        return {"round": self.round, "version": self.version, "steps": self.steps, "blockers": self.blockers,
                "override_roles": self.override_roles, "outcome": self.outcome,
                "decisions": [_dated(asdict(d)) for d in self.decisions],
                "overrides": [_dated(asdict(o)) for o in self.overrides]}

    @classmethod
    def from_dict(cls, data: dict) -> "Review":
        return cls(round=data["round"], version=data["version"], steps=data["steps"], blockers=data["blockers"],
                   override_roles=data.get("override_roles", ["approver"]), outcome=data.get("outcome", "pending"),
                   decisions=[Decision(**_undated(d)) for d in data.get("decisions", [])],
                   overrides=[Override(**_undated(o)) for o in data.get("overrides", [])])


def _holds(roles: frozenset[str], wanted: list[str]) -> bool:
    return "admin" in roles or bool(roles.intersection(wanted))


def _four_eyes(actor: str, authors: set[str], what: str) -> None:
    if actor in authors:
        raise Forbidden(f"Four eyes: an author of this contract cannot {what} it.")


def _dated(d: dict) -> dict:
    return {**d, "at": d["at"].isoformat()}


def _undated(d: dict) -> dict:
    return {**d, "at": dt.datetime.fromisoformat(d["at"])}
