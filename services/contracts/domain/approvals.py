"""Approval policy and the review of one contract version.

An organisation's policy is an ordered list of steps, each with the roles that may decide it
and a condition saying when it applies (legal always; finance above an amount; an approver
when a clause departs from its standard position). When a draft is submitted, the policy is
evaluated against that version once: the steps that apply and the high-severity risk findings
(which block until an approver overrides each with a reason) make up the review. Steps are
decided in order, under the separation of duties of `duties.py`: nobody who wrote or submitted
the version decides on it, each step of a round has its own person, and admin decides a step
only with the step's role.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.contracts.domain.duties import (RISK_OVERRIDE, ensure_holds, ensure_not_involved, ensure_one_seat,
                                              ensure_reason, holds)
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
    submitted_by: str | None = None   # decides nothing in this round (four eyes)

    @classmethod
    def open(cls, round_: int, version: int, policy: ApprovalPolicy, facts: ReviewFacts,
             submitted_by: str | None = None) -> "Review":
        steps = [{"key": s.key, "label": s.label or s.key, "roles": list(s.roles), "reason": s.when.reason(facts)}
                 for s in policy.steps if s.when.applies(facts)]
        return cls(round=round_, version=version, steps=steps, blockers=list(facts.blocking_findings),
                   override_roles=list(policy.override_roles), submitted_by=submitted_by)

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

    def seats(self) -> dict[str, str]:
        """Who decided what in this round: a step's key, or `risk_override` for whoever overrode."""
        taken = {o.by: RISK_OVERRIDE for o in self.overrides}
        taken.update({d.by: d.step for d in self.decisions})
        return taken

    def _ensure_independent(self, actor: str, authors: set[str], what: str) -> None:
        involved = {author: "wrote a version of this contract" for author in authors}
        if self.submitted_by:
            involved.setdefault(self.submitted_by, "submitted this version")
        ensure_not_involved(actor, involved, what)

    # --- decisions

    def approve(self, actor: str, roles: frozenset[str], authors: set[str], at: dt.datetime,
                step: str | None = None, comment: str | None = None) -> Decision:
        """Approve the next pending step (steps go in order); an author or the submitter never approves,
        and whoever decided another step of this round does not decide this one."""
        self._ensure_independent(actor, authors, "approve it")
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
        ensure_holds(roles, current["roles"], f"The waiting step '{current['key']}'", waiting_step=current["key"])
        ensure_one_seat(actor, self.seats(), current["key"])
        decision = Decision(current["key"], "approved", actor, at, comment)
        self.decisions.append(decision)
        if self.is_complete():
            self.outcome = "approved"
        return decision

    def reject(self, actor: str, roles: frozenset[str], authors: set[str], at: dt.datetime,
               comment: str) -> Decision:
        """Reject on behalf of the step waiting (or any still pending step the actor may decide); whoever
        already decided in this round rejects only from the seat they hold (an overrider's)."""
        self._ensure_independent(actor, authors, "reject it")
        candidates = [s for s in self.pending_steps() if holds(roles, s["roles"])]
        if holds(roles, self.override_roles) and self.open_blockers():
            candidates.append({"key": RISK_OVERRIDE})
        seats = self.seats()
        if actor in seats:
            candidates = [c for c in candidates if c["key"] == seats[actor]]
            if not candidates:
                ensure_one_seat(actor, seats, "reject")
        if not candidates:
            raise Forbidden("None of the pending steps is decided by your roles.",
                            pending_steps=[s["key"] for s in self.pending_steps()])
        decision = Decision(candidates[0]["key"], "rejected", actor, at, comment)
        self.decisions.append(decision)
        self.outcome = "rejected"
        return decision

    def override(self, actor: str, roles: frozenset[str], authors: set[str], at: dt.datetime,
                 finding: str, reason: str) -> Override:
        """Let a high-severity finding pass, on the record, with a reason that says something."""
        self._ensure_independent(actor, authors, "override a finding on it")
        ensure_holds(roles, self.override_roles, "Overriding a risk finding")
        ensure_one_seat(actor, self.seats(), RISK_OVERRIDE)
        ensure_override_input(finding, reason, self.blockers)
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
                "override_roles": self.override_roles, "outcome": self.outcome, "submitted_by": self.submitted_by,
                "decisions": [_dated(asdict(d)) for d in self.decisions],
                "overrides": [_dated(asdict(o)) for o in self.overrides]}

    @classmethod
    def from_dict(cls, data: dict) -> "Review":
        return cls(round=data["round"], version=data["version"], steps=data["steps"], blockers=data["blockers"],
                   override_roles=data.get("override_roles", ["approver"]), outcome=data.get("outcome", "pending"),
                   submitted_by=data.get("submitted_by"),
                   decisions=[Decision(**_undated(d)) for d in data.get("decisions", [])],
                   overrides=[Override(**_undated(o)) for o in data.get("overrides", [])])


def ensure_override_input(finding: str, reason: str, blockers: list[dict]) -> None:
    """Every bad field of an override at once: a finding this review does not block on, a blank reason."""
    problems: list[dict] = []
    known = finding in {b["id"] for b in blockers}
    if not known:
        problems.append(field_error("/finding", "one of: " + ", ".join(b["id"] for b in blockers)))
    ensure_reason(reason, problems)
    if problems:
        raise Invalid("An override needs a reason." if known else f"No blocking finding '{finding}' here.",
                      errors=problems)


def _dated(d: dict) -> dict:
    return {**d, "at": d["at"].isoformat()}


def _undated(d: dict) -> dict:
    return {**d, "at": dt.datetime.fromisoformat(d["at"])}
