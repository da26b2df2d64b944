"""Change-request use cases: raise, submit, assess, approve or reject, withdraw, implement.

Each runs in one unit of work: the request is locked, the `ChangeRequest` aggregate checks its
state machine (409 naming what is allowed), changes itself and records its event; the change
goes into the contract's audit chain and the events out through the outbox at commit.
Implementing applies the change to the contract's current version and drafts the amended version
from the same template, so the amendment, the redline and `contract.amended` all come from one
set of values.

The tranches payments has invoiced or paid are known here from payments' own events (the
`tranche_locks` projection), never by asking payments.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from services.contracts.domain.change_request import ChangeRequest
from services.contracts.domain.change_approval import (DEFAULT_CHANGE_POLICY, Assessment, ChangePolicy, ChangeReview,
                                                       price_change)
from services.contracts.domain.change_requests import (Amended, ChangeStatus, ProposedChange, apply_change, assessment_due,
                                                       find_overlap, in_terms_of_the_change)
from services.contracts.domain.contract import Contract, amendment_blockers, terms_of
from services.contracts.domain.variables import VariablesInvalid
from services.contracts.service_layer import drafting, rendering
from services.contracts.service_layer.lifecycle import approval_policy
from services.contracts.service_layer.unit_of_work import ContractsUnitOfWork
from shared.auth import Principal
from shared.business_calendar import BusinessCalendar
from shared.errors import Conflict
from shared.ids import new_id

# A contract without a change-control response time still gets an answer within this.
DEFAULT_RESPONSE = (5, "working_days")
OVERDUE_ACTOR = "system:change-control"


def change_policy(policies, org: str) -> ChangePolicy:
    stored = policies.get("change", org)
    return ChangePolicy.model_validate(stored) if stored else DEFAULT_CHANGE_POLICY


def set_policy(uow: ContractsUnitOfWork, who: Principal, new: ChangePolicy, now: dt.datetime) -> ChangePolicy:
    stored = new.model_dump(mode="json")
    with uow:
        before = uow.policies.replace("change", who.org, stored, who.sub, now)
        uow.audit.append(stream=f"change-policy:{who.org}", org=who.org, actor=who.sub,
                         action="change_policy.changed", before=before, after=stored)
        uow.commit()
    return new


# --- raising ---------------------------------------------------------------------------------------

def raise_request(uow: ContractsUnitOfWork, catalogue: drafting.Catalogue, who: Principal, contract_id: str, *,
                  title: str, description: str, reason: str, kinds: list[str], change: ProposedChange,
                  now: dt.datetime, submit_now: bool = False) -> ChangeRequest:
    """A draft request against the contract's current version, refused now if it could never apply;
    submitted at once when asked (one transaction either way)."""
    with uow:
        contract = uow.contracts.get(who.org, contract_id, for_update=True)
        if not contract.in_force:
            raise Conflict(f"Change requests are raised against a signed or active contract; this one is "
                           f"'{contract.status}'.", current_state=contract.status)
        library = catalogue.of(uow.clause_versions, who.org)
        _amended(uow, library, contract, change)   # validation only: every refusal is reported at once
        cr = ChangeRequest.raised(id=new_id(), org=who.org, contract_id=contract.id,
                                  number=uow.change_requests.next_number(contract.id), title=title,
                                  description=description, reason=reason, kinds=kinds, change=change,
                                  base_version=contract.version, by=who.sub, now=now)
        uow.change_requests.add(cr)
        _audit(uow, cr, who.sub, "change_request.raised", None)
        if submit_now:
            cr = submit(uow, who, cr.id, now)
        uow.commit()
    return cr


def _amended(uow: ContractsUnitOfWork, library: drafting.Library, contract: Contract,
             change: ProposedChange) -> tuple[Amended, Any]:
    """The change applied to the current version and drafted again (nothing stored)."""
    amended, version = _amendment(uow, library, contract, change)
    return amended, _in_terms_of(change, drafting.NextVersion.draft)(version)


def _amendment(uow: ContractsUnitOfWork, library: drafting.Library, contract: Contract,
               change: ProposedChange) -> tuple[Amended, drafting.NextVersion]:
    """The change applied to the current version: the values of the amended version, and what it is drafted from."""
    current = uow.contracts.version(contract, contract.version)
    amended = apply_change(current.variables, drafting.position_inputs(current.positions), change,
                           uow.tranche_locks.of_contract(contract.id))
    template = library.template(current.template_key)
    return amended, drafting.NextVersion(template, current.language, amended.variables, amended.positions,
                                         contract.version + 1)


def _in_terms_of(change: ProposedChange, make: Callable[[drafting.NextVersion], Any]):
    """`make` (drafting the amended version), its refusals told in terms of the change that caused them."""
    def made(version: drafting.NextVersion) -> Any:
        try:
            return make(version)
        except VariablesInvalid as refused:
            raise in_terms_of_the_change(refused, change) from None
    return made


# --- the state machine -----------------------------------------------------------------------------

def _transition(uow: ContractsUnitOfWork, who: Principal, request_id: str, command: str,
                change: Callable[[ChangeRequest, Contract], None]) -> ChangeRequest:
    """Lock the request and its contract, let the aggregate change, save, audit and commit."""
    with uow:
        cr = uow.change_requests.get(who.org, request_id, for_update=True)
        cr.ensure_allowed(command)
        contract = uow.contracts.get(who.org, cr.contract_id, for_update=True)
        before = cr.snapshot()
        change(cr, contract)
        uow.contracts.save(contract)
        uow.change_requests.save(cr)
        _audit(uow, cr, who.sub, f"change_request.{command}", before)
        uow.collect(contract, cr)
        uow.commit()
    return cr


def submit(uow: ContractsUnitOfWork, who: Principal, request_id: str, now: dt.datetime) -> ChangeRequest:
    """The clock of the change-control clause starts: assessment due in N working days."""
    def change(cr: ChangeRequest, contract: Contract) -> None:
        terms = terms_of(contract, uow.contracts.version(contract, contract.version))
        days, unit = (terms.change_response.days, terms.change_response.unit) if terms.change_response \
            else DEFAULT_RESPONSE
        cr.submit(who.sub, now, assessment_due(now, days, unit, _calendar(terms)))
    return _transition(uow, who, request_id, "submit", change)


def assess(uow: ContractsUnitOfWork, catalogue: drafting.Catalogue, who: Principal, request_id: str,
           assessment: Assessment, now: dt.datetime) -> ChangeRequest:
    """Record the impact; the approval chain follows from the kinds and the price change of the
    amended contract, which is drafted (not stored) against the contract as it is now, so a base
    amended in the meantime is checked again; its high-severity findings wait for overrides."""
    def change(cr: ChangeRequest, contract: Contract) -> None:
        cr.ensure_may_assess(who.sub)           # before drafting anything
        cr.assess(assessment, _review(uow, catalogue, cr, contract), who.sub, now, contract.version)
    return _transition(uow, who, request_id, "assess", change)


def _review(uow: ContractsUnitOfWork, catalogue: drafting.Catalogue, cr: ChangeRequest,
            contract: Contract) -> ChangeReview:
    """The chain for the amendment as it would be now: steps by kinds and price change, its blockers."""
    _, drafted = _amended(uow, catalogue.of(uow.clause_versions, cr.org), contract, cr.proposed)
    current = uow.contracts.version(contract, contract.version)
    rules = approval_policy(uow.policies, cr.org)
    return ChangeReview.open(change_policy(uow.policies, cr.org), set(cr.kinds),
                             price_change(current.terms, drafted.terms),
                             amendment_blockers(contract, drafted, rules), rules.override_roles)


def approve(uow: ContractsUnitOfWork, who: Principal, request_id: str, comment: str | None,
            now: dt.datetime) -> ChangeRequest:
    return _transition(uow, who, request_id, "approve",
                       lambda cr, _contract: cr.approve(who.sub, who.roles, comment, now))


def override(uow: ContractsUnitOfWork, who: Principal, request_id: str, finding: str, reason: str,
             now: dt.datetime) -> ChangeRequest:
    """Let a blocking finding of the amended contract pass, on the record, with a reason."""
    return _transition(uow, who, request_id, "override",
                       lambda cr, _contract: cr.override(who.sub, who.roles, finding, reason, now))


def reject(uow: ContractsUnitOfWork, who: Principal, request_id: str, comment: str,
           now: dt.datetime) -> ChangeRequest:
    return _transition(uow, who, request_id, "reject", lambda cr, _contract: cr.reject(who.sub, who.roles, comment, now))


def withdraw(uow: ContractsUnitOfWork, who: Principal, request_id: str, now: dt.datetime) -> ChangeRequest:
    return _transition(uow, who, request_id, "withdraw", lambda cr, _contract: cr.withdraw(who.sub, who.roles, now))


def implement(uow: ContractsUnitOfWork, catalogue: drafting.Catalogue, who: Principal, request_id: str,
              now: dt.datetime) -> tuple[ChangeRequest, Contract]:
    """The amended version: drafted from the changed values; `contract.amended` with the full new terms.
    Drafted and rendered ahead of the write transaction, again inside only if the contract moved (`rendering`).

    A request approved against an older version applies on top only if no request implemented
    since wrote any of the same things; otherwise 409, and it is assessed again.
    """
    rendered = rendering.ahead(uow, lambda: _implementation(uow, catalogue, who, request_id), drafting.render_version)
    amended_contract: list[Contract] = []

    def change(cr: ChangeRequest, contract: Contract) -> None:
        amended, version = _implementing(uow, catalogue, who, cr, contract)
        drafted = rendering.reuse(rendered, version, _in_terms_of(cr.proposed, drafting.render_version))
        before = contract.snapshot()
        new = drafting.store_amendment(uow, contract, drafted, amended.variables, who.sub, now,
                                       reason=f"CR-{cr.number}: {cr.title}", change_request_id=cr.id,
                                       delta={**amended.delta, "change_request": cr.label})
        uow.audit.record(org=contract.org, contract_id=contract.id, actor=who.sub, action="contract.amended",
                         before=before, after=contract.snapshot(),
                         detail={"version": new.version, "change_request": cr.label})
        cr.implemented(new.version, now)
        amended_contract.append(contract)
    cr = _transition(uow, who, request_id, "implement", change)
    return cr, amended_contract[0]


def _implementing(uow: ContractsUnitOfWork, catalogue: drafting.Catalogue, who: Principal, cr: ChangeRequest,
                  contract: Contract) -> tuple[Amended, drafting.NextVersion]:
    """What implementing `cr` makes of the contract as it is (409 when a newer request wrote the same)."""
    if cr.base_version != contract.version:
        _ensure_no_overlap(uow, cr, cr.proposed)
    return _amendment(uow, catalogue.of(uow.clause_versions, who.org), contract, cr.proposed)


def _implementation(uow: ContractsUnitOfWork, catalogue: drafting.Catalogue, who: Principal,
                    request_id: str) -> drafting.NextVersion:
    """Read ahead of the write transaction: the amended version the request would make now."""
    cr = uow.change_requests.get(who.org, request_id)
    cr.ensure_allowed("implement")
    contract = uow.contracts.get(who.org, cr.contract_id)
    return _implementing(uow, catalogue, who, cr, contract)[1]


def _ensure_no_overlap(uow: ContractsUnitOfWork, cr: ChangeRequest, mine: ProposedChange) -> None:
    for other in uow.change_requests.implemented_since(cr.contract_id, cr.base_version):
        overlap = find_overlap(other.proposed, mine)
        if overlap:
            raise Conflict(f"CR-{other.number} changed the contract since this request was assessed and wrote the "
                           f"same: {', '.join(sorted(overlap))}. Assess this request again against version "
                           f"{other.implemented_version}.", overlapping=sorted(overlap),
                           implemented_by=f"CR-{other.number}", allowed_transitions=["assess"])


# --- the response-time timer -----------------------------------------------------------------------

def announce_overdue(uow_factory: Callable[[], ContractsUnitOfWork],
                     now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """`change_request.overdue` for every submitted request not assessed in time, once each.

    The conditional UPDATE is the claim: with several replicas only one turns `overdue_at` from
    NULL to now, and only that one announces it.
    """
    with uow_factory() as uow:
        due = uow.change_requests.overdue_candidates(now)
    announced = sum(_announce_one(uow_factory(), request_id, now) for request_id in due)
    with uow_factory() as uow:
        return announced, uow.change_requests.next_deadline()


def _announce_one(uow: ContractsUnitOfWork, request_id: str, now: dt.datetime) -> bool:
    with uow:
        cr = uow.change_requests.find(request_id)
        if cr is None:
            return False
        cr.overdue(now)
        if not uow.change_requests.save_claimed(cr, overdue_at=None, status=ChangeStatus.SUBMITTED.value):
            return False
        _audit(uow, cr, OVERDUE_ACTOR, "change_request.overdue", None)
        uow.collect(cr)
        uow.commit()
    return True


# --- what payments tells us ------------------------------------------------------------------------

def lock_tranche(uow: ContractsUnitOfWork, org: str, contract_id: str, tranche_key: str, state: str,
                 at: dt.datetime) -> None:
    """Invoiced or paid: from now on a change request cannot touch the tranche. Paid outranks invoiced."""
    with uow:
        uow.tranche_locks.lock(org, contract_id, tranche_key, state, at)
        uow.commit()


# --- helpers ---------------------------------------------------------------------------------------

def _audit(uow: ContractsUnitOfWork, cr: ChangeRequest, actor: str, action: str, before: dict | None) -> None:
    uow.audit.record(org=cr.org, contract_id=cr.contract_id, actor=actor, action=action, before=before,
                     after=cr.snapshot(), detail={"change_request": cr.label})


def _calendar(terms) -> BusinessCalendar:
    """Working days of the mainland-China calendar, in the contract's time zone when it has service hours."""
    zone = terms.sla.service_hours.timezone if terms.sla else "Asia/Shanghai"
    return BusinessCalendar.office_hours(timezone=zone)
