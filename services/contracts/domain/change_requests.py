"""Change requests (变更申请) and what implementing one does to a contract's variables.

A change request is raised against a signed or active contract version. Its proposed change is
structured data against that version's variables (the values the contract was drafted from):
a new total price, tranche changes by amount, new dates, new SLA targets, another clause
position or custom clause text, and other variable values. Applying it yields the variables of
the amended version; the document, the terms and the redline then follow from drafting, so an
amendment cannot say something the data does not.

Money rules: a tranche already invoiced or paid is locked (neither its amount nor its trigger
may change, and it cannot be removed); the tranche amounts must add up to the total to the fen.
Tranches are stored as percentages, so the amended percentages are derived from the agreed
amounts precisely enough that the largest-remainder split gives those amounts back.

States: draft → submitted → assessed → approved → implemented, with rejected and withdrawn as
ends. The approval chain comes from the organisation's change policy (PM always; legal for
changes of terms; finance above a cost impact). The raiser never approves their own request.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Mapping
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.business_calendar import BusinessCalendar
from shared.errors import Conflict, Forbidden, Invalid, field_error
from shared.money import FEN, HUNDRED, allocate_percent


ChangeKind = Literal["scope", "price", "schedule", "service_levels", "terms"]
Role = Literal["pm", "legal", "finance", "approver", "vendor", "admin"]


class ChangeStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ASSESSED = "assessed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    IMPLEMENTED = "implemented"


S = ChangeStatus
TRANSITIONS: dict[str, tuple[tuple[ChangeStatus, ...], ChangeStatus | None]] = {
    # command: (from, to); approve's target depends on whether it was the last step (None)
    "submit": ((S.DRAFT,), S.SUBMITTED),
    "assess": ((S.SUBMITTED, S.ASSESSED), S.ASSESSED),     # re-assessment replaces the earlier one
    "approve": ((S.ASSESSED,), None),
    "reject": ((S.SUBMITTED, S.ASSESSED), S.REJECTED),
    "withdraw": ((S.DRAFT, S.SUBMITTED, S.ASSESSED), S.WITHDRAWN),
    "implement": ((S.APPROVED,), S.IMPLEMENTED),
}


def allowed_commands(status: ChangeStatus) -> list[str]:
    return [name for name, (sources, _) in TRANSITIONS.items() if ChangeStatus(status) in sources]


def ensure_allowed(command: str, status: ChangeStatus) -> None:
    if ChangeStatus(status) not in TRANSITIONS[command][0]:
        allowed = allowed_commands(ChangeStatus(status))
        raise Conflict(f"A change request in state '{status}' cannot '{command}'; allowed now: "
                       f"{', '.join(allowed) if allowed else 'nothing (final state)'}.",
                       current_state=str(status), allowed_transitions=allowed)


# --- the proposed change -----------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True)


class TrancheChange(BaseModel):
    """Add, modify or remove one payment tranche. Amounts, not percentages: that is what people agree."""
    model_config = _STRICT
    key: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    action: Literal["add", "modify", "remove"] = "modify"
    label: str | None = Field(default=None, min_length=1, max_length=200)
    amount: Decimal | None = Field(default=None, gt=0, decimal_places=2, allow_inf_nan=False)
    trigger: dict[str, Any] | None = None
    due: dict[str, Any] | None = None
    is_retention: bool | None = None

    @model_validator(mode="after")
    def _add_needs_everything(self) -> TrancheChange:
        if self.action == "add" and (self.label is None or self.amount is None or self.trigger is None
                                     or self.due is None):
            raise ValueError("a new tranche needs label, amount, trigger and due")
        return self


class DatesChange(BaseModel):
    model_config = _STRICT
    effective_date: dt.date | None = None
    end_date: dt.date | None = None
    milestones: dict[str, dt.date] = {}     # milestone key -> new due date


class ClauseChange(BaseModel):
    """Another position of the clause, or custom wording in each language."""
    model_config = _STRICT
    position: str | None = Field(default=None, min_length=1)
    custom: dict[Literal["zh-CN", "en"], str] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ClauseChange:
        if (self.position is None) == (self.custom is None):
            raise ValueError("give either `position` or `custom`")
        return self


class ProposedChange(BaseModel):
    model_config = _STRICT
    total_price: Decimal | None = Field(default=None, gt=0, decimal_places=2, allow_inf_nan=False)
    tranches: list[TrancheChange] = []
    dates: DatesChange | None = None
    sla_targets: dict[str, Decimal] = {}    # SLA metric key -> new target
    clauses: dict[str, ClauseChange] = {}   # clause key -> new position or wording
    variables: dict[str, Any] = {}          # any other variable, by name, with its new value

    @model_validator(mode="after")
    def _not_empty(self) -> ProposedChange:
        if not (self.total_price or self.tranches or self.dates or self.sla_targets or self.clauses
                or self.variables):
            raise ValueError("the change proposes nothing")
        return self

    def touched(self) -> set[str]:
        """The paths this change writes; two requests on one base overlap when these meet."""
        paths: set[str] = set()
        if self.total_price is not None:
            paths.add("total_price")
        paths |= {f"tranches/{t.key}" for t in self.tranches}
        if self.dates:
            paths |= {name for name in ("effective_date", "end_date") if getattr(self.dates, name)}
            paths |= {f"milestones/{key}" for key in self.dates.milestones}
        paths |= {f"sla_metrics/{key}" for key in self.sla_targets}
        paths |= {f"clauses/{key}" for key in self.clauses}
        paths |= set(self.variables)
        return paths


_RESERVED = {"total_price", "tranches", "milestones", "sla_metrics", "effective_date", "end_date"}


@dataclass(frozen=True)
class Amended:
    """The result of applying a change: the amended variables, positions and what changed."""
    variables: dict[str, Any]
    positions: dict[str, Any]
    delta: dict[str, Any]


def apply_change(variables: Mapping[str, Any], positions: Mapping[str, Any], change: ProposedChange,
                 locked_tranches: Mapping[str, str], root: str = "/changes") -> Amended:
    """Apply `change` to a version's variables; every problem is reported at once (`Invalid`).

    `locked_tranches` maps a tranche key to why it cannot change ("invoiced", "paid").
    """
    problems: list[dict] = []
    new = {k: _copy(v) for k, v in variables.items()}
    delta: dict[str, Any] = {}
    _apply_money(new, change, locked_tranches, root, problems, delta)
    _apply_dates(new, change, root, problems, delta)
    _apply_sla_targets(new, change, root, problems, delta)
    for name, value in change.variables.items():
        if name in _RESERVED:
            problems.append(field_error(f"{root}/variables/{name}", f"change `{name}` through its own field"))
        elif name not in variables:
            problems.append(field_error(f"{root}/variables/{name}", "the contract has no such variable"))
        elif variables[name] != value:
            delta.setdefault("variables", {})[name] = {"from": variables[name], "to": value}
            new[name] = value
    new_positions = dict(positions)
    for key, clause in change.clauses.items():
        choice = {"position": clause.position} if clause.position else {"custom": dict(clause.custom or {})}
        delta.setdefault("clauses", {})[key] = {"from": positions.get(key, {"position": "standard"}), "to": choice}
        new_positions[key] = choice
    if problems:
        raise Invalid("The proposed change cannot be applied to this contract version.", errors=problems)
    return Amended(new, new_positions, delta)


def current_amounts(variables: Mapping[str, Any]) -> dict[str, Decimal]:
    """Each tranche's amount as the contract splits it today."""
    tranches = variables.get("tranches") or []
    total = Decimal(str(variables["total_price"]["amount"]))
    amounts = allocate_percent(total, [Decimal(str(t["percent"])) for t in tranches])
    return {t["key"]: amount for t, amount in zip(tranches, amounts)}


def _apply_money(new: dict, change: ProposedChange, locked: Mapping[str, str], root: str,
                 problems: list[dict], delta: dict) -> None:
    if change.total_price is None and not change.tranches:
        return
    old_total = Decimal(str(new["total_price"]["amount"]))
    total = change.total_price if change.total_price is not None else old_total
    amounts = current_amounts(new)
    rows = {t["key"]: dict(t) for t in new.get("tranches") or []}
    order = list(rows)
    for i, tc in enumerate(change.tranches):
        where = f"{root}/tranches/{i}"
        if tc.key in locked and tc.action != "add":
            problems.append(field_error(where, f"tranche '{tc.key}' is already {locked[tc.key]} and cannot change"))
            continue
        if tc.action == "add":
            if tc.key in rows:
                problems.append(field_error(f"{where}/key", f"tranche '{tc.key}' already exists"))
                continue
            rows[tc.key] = {"key": tc.key, "label": tc.label, "trigger": tc.trigger, "due": tc.due,
                            "is_retention": bool(tc.is_retention)}
            order.append(tc.key)
            amounts[tc.key] = tc.amount
        elif tc.key not in rows:
            problems.append(field_error(f"{where}/key", f"the contract has no tranche '{tc.key}'"))
        elif tc.action == "remove":
            order.remove(tc.key)
            del rows[tc.key], amounts[tc.key]
        else:
            rows[tc.key].update({name: getattr(tc, name) for name in ("label", "trigger", "due", "is_retention")
                                 if getattr(tc, name) is not None})
            if tc.amount is not None:
                amounts[tc.key] = tc.amount
    if problems:
        return
    added = sum((amounts[k] for k in order), Decimal(0))
    if added != total:
        problems.append(field_error(f"{root}/tranches", f"the tranche amounts add up to {added:.2f}, "
                                                       f"but the total is {total:.2f}"))
        return
    percents = percents_for([amounts[k] for k in order], total)
    new["tranches"] = [{**rows[k], "percent": format(p, "f")} for k, p in zip(order, percents)]
    if total != old_total:
        new["total_price"] = {**new["total_price"], "amount": f"{total:.2f}"}
        delta["total_price"] = price_change(old_total, total)
    delta["tranches"] = [{"key": tc.key, "action": tc.action,
                          **({"amount": f"{amounts[tc.key]:.2f}"} if tc.key in amounts else {})}
                         for tc in change.tranches]


def price_change(before: Decimal, after: Decimal) -> dict[str, str]:
    """How a total moved, as the delta of `contract.amended` and the amendment document state it."""
    return {"from": f"{before:.2f}", "to": f"{after:.2f}", "delta": f"{after - before:.2f}"}


def percents_for(amounts: list[Decimal], total: Decimal) -> list[Decimal]:
    """Percentages (adding up to exactly 100) that split `total` back into exactly `amounts`."""
    # Fine enough for any total: the rounding of all shares together stays far below one fen.
    places = Decimal(1).scaleb(-(len(str(int(total))) + 6))
    percents = [(a * HUNDRED / total).quantize(places) for a in amounts]
    largest = max(range(len(percents)), key=lambda i: amounts[i])
    percents[largest] += HUNDRED - sum(percents, Decimal(0))
    if allocate_percent(total, percents) != [a.quantize(FEN) for a in amounts]:   # cannot happen at this precision
        raise ArithmeticError("percentages do not reproduce the amounts")
    return [p.normalize() if p != p.to_integral() else p.quantize(Decimal(1)) for p in percents]


def _apply_dates(new: dict, change: ProposedChange, root: str, problems: list[dict], delta: dict) -> None:
    if not change.dates:
        return
    for name in ("effective_date", "end_date"):
        value = getattr(change.dates, name)
        if value is not None:
            delta.setdefault("dates", {})[name] = {"from": str(new.get(name)), "to": value.isoformat()}
            new[name] = value.isoformat()
    if dt.date.fromisoformat(str(new["effective_date"])) > dt.date.fromisoformat(str(new["end_date"])):
        problems.append(field_error(f"{root}/dates/end_date", "the end date would come before the effective date"))
    milestones = {m["key"]: m for m in new.get("milestones") or []}
    for key, due in change.dates.milestones.items():
        if key not in milestones:
            problems.append(field_error(f"{root}/dates/milestones/{key}", f"the contract has no milestone '{key}'"))
            continue
        delta.setdefault("dates", {}).setdefault("milestones", {})[key] = {
            "from": str(milestones[key].get("due_date")), "to": due.isoformat()}
        milestones[key] = {**milestones[key], "due_date": due.isoformat()}
    if change.dates.milestones:
        new["milestones"] = list(milestones.values())
        end = dt.date.fromisoformat(str(new["end_date"]))
        for key, due in change.dates.milestones.items():
            if key in milestones and due > end:
                problems.append(field_error(f"{root}/dates/milestones/{key}",
                                            f"milestone '{key}' would fall after the end date {end}"))


def _apply_sla_targets(new: dict, change: ProposedChange, root: str, problems: list[dict], delta: dict) -> None:
    if not change.sla_targets:
        return
    metrics = {m["key"]: dict(m) for m in new.get("sla_metrics") or []}
    for key, target in change.sla_targets.items():
        if key not in metrics:
            problems.append(field_error(f"{root}/sla_targets/{key}", f"the contract has no SLA metric '{key}'"))
            continue
        delta.setdefault("sla_targets", {})[key] = {"from": str(metrics[key]["target"]), "to": str(target)}
        metrics[key]["target"] = str(target)
    new["sla_metrics"] = list(metrics.values())


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# --- assessment and approval -------------------------------------------------------------------

class Assessment(BaseModel):
    """The impact assessment entered by an assessor."""
    model_config = _STRICT
    cost: Decimal = Field(decimal_places=2, allow_inf_nan=False)          # may be negative (a saving)
    schedule_days: int = Field(ge=-3650, le=3650)
    risk: Literal["low", "medium", "high"]
    affected_deliverables: list[str] = []
    affected_services: list[str] = []
    notes: str | None = Field(default=None, max_length=4000)


class ChangeCondition(BaseModel):
    model_config = _STRICT
    kind: Literal["always", "cost_above", "kinds"] = "always"
    amount: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    kinds: list[ChangeKind] | None = None

    def applies(self, kinds: set[str], cost: Decimal) -> bool:
        if self.kind == "always":
            return True
        if self.kind == "cost_above":
            return abs(cost) > (self.amount or Decimal(0))
        return bool(kinds & set(self.kinds or []))


class ChangeStep(BaseModel):
    model_config = _STRICT
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    roles: list[Role] = Field(min_length=1)
    when: ChangeCondition = ChangeCondition()


class ChangePolicy(BaseModel):
    model_config = _STRICT
    steps: list[ChangeStep] = Field(min_length=1)


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


# --- the response-time commitment --------------------------------------------------------------

def assessment_due(submitted_at: dt.datetime, days: int, unit: str, calendar: BusinessCalendar) -> dt.datetime:
    """When the assessment is due: the end of the `days`-th working (or calendar) day after submission.

    The day of submission does not count; the deadline is local midnight in the calendar's time
    zone, returned in UTC. Working days follow the mainland-China calendar with its adjusted
    working weekends (调休), through `BusinessCalendar`.
    """
    zone = ZoneInfo(calendar.timezone)
    submitted_on = submitted_at.astimezone(zone).date()
    if unit == "working_days":
        last_day = calendar.add_working_days(submitted_on, days)
    else:
        last_day = submitted_on + dt.timedelta(days=days)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), zone)
    return end.astimezone(dt.timezone.utc)


def find_overlap(first: ProposedChange, second: ProposedChange) -> set[str]:
    """Where two requests on the same base would write the same thing."""
    return first.touched() & second.touched()
