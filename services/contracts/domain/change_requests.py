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
ends. The approval chain (`change_approval.py`) comes from the organisation's change policy (PM
always; legal for changes of terms; finance above a price change). The raiser neither assesses
nor approves their own request.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Mapping
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.contracts.domain.amount_words import MAX_AMOUNT
from services.contracts.domain.variables import writable
from shared.business_calendar import BusinessCalendar
from shared.errors import Conflict, Invalid, field_error
from shared.money import FEN, HUNDRED, allocate_percent


ChangeKind = Literal["scope", "price", "schedule", "service_levels", "terms"]


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
    "override": ((S.ASSESSED,), None),                     # a blocking finding of the amended contract
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
    amount: Decimal | None = Field(default=None, gt=0, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False)
    trigger: dict[str, Any] | None = Field(default=None, max_length=10)
    due: dict[str, Any] | None = Field(default=None, max_length=10)
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
    milestones: dict[str, dt.date] = Field(default={}, max_length=200)     # milestone key -> new due date


class ClauseChange(BaseModel):
    """Another position of the clause, or custom wording in each language."""
    model_config = _STRICT
    position: str | None = Field(default=None, min_length=1, max_length=60)
    custom: dict[Literal["zh-CN", "en"], Annotated[str, Field(max_length=50_000), AfterValidator(writable)]] | None \
        = Field(default=None, max_length=2)

    @model_validator(mode="after")
    def _one_of(self) -> ClauseChange:
        if (self.position is None) == (self.custom is None):
            raise ValueError("give either `position` or `custom`")
        return self


class ProposedChange(BaseModel):
    model_config = _STRICT
    total_price: Decimal | None = Field(default=None, gt=0, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False)
    tranches: list[TrancheChange] = Field(default=[], max_length=100)
    dates: DatesChange | None = None
    sla_targets: dict[str, Decimal] = Field(default={}, max_length=100)    # SLA metric key -> new target
    clauses: dict[str, ClauseChange] = Field(default={}, max_length=100)   # clause key -> new position or wording
    variables: dict[str, Any] = Field(default={}, max_length=200)          # any other variable, by name

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
        # drafting reads a library position as its bare key ("no_convenience"), custom wording as {"custom": ...}
        wanted = clause.position if clause.position else {"custom": dict(clause.custom or {})}
        delta.setdefault("clauses", {})[key] = {"from": _as_choice(positions.get(key, "standard")),
                                                "to": _as_choice(wanted)}
        new_positions[key] = wanted
    if problems:
        raise Invalid("The proposed change cannot be applied to this contract version.", errors=problems)
    return Amended(new, new_positions, delta)


def in_terms_of_the_change(error: Invalid, change: ProposedChange, root: str = "/changes") -> Invalid:
    """A drafting refusal of the amended version, its pointers moved onto the fields the change sent:
    /positions/termination is /changes/clauses/termination/position (or .../custom), /variables/x a
    variable the change set is /changes/variables/x. Pointers to what the change did not send stay."""
    def moved(pointer: str) -> str:
        parts = pointer.split("/")
        if len(parts) >= 3 and parts[1] == "positions" and _unescape(parts[2]) in change.clauses:
            clause = change.clauses[_unescape(parts[2])]
            return f"{root}/clauses/{parts[2]}/{'position' if clause.position else 'custom'}"
        if len(parts) >= 3 and parts[1] == "variables" and _unescape(parts[2]) in change.variables:
            return f"{root}/variables/" + "/".join(parts[2:])
        return pointer
    errors = [{**e, "pointer": moved(e["pointer"])} for e in (error.errors or [])]
    return Invalid("The proposed change cannot be applied to this contract version: "
                   + "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors[:5]), errors=errors)


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _as_choice(given: Any) -> dict[str, Any]:
    """A position as the change's delta records it: {"position": key}, {"custom": ...} or {"omit": true}."""
    return {"position": given} if isinstance(given, str) else dict(given)


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
