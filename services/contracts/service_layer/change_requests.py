"""Change-request use cases: raise, submit, assess, approve or reject, withdraw, implement.

Each runs in one unit of work: the request row is locked, the state machine checked (409 naming
what is allowed), the change recorded in the contract's audit chain and announced through the
outbox. Implementing applies the change to the contract's current version and drafts the amended
version from the same template, so the amendment, the redline and `contract.amended` all come
from one set of values.

The tranches payments has invoiced or paid are known here from payments' own events (the
`tranche_locks` projection), never by asking payments.
"""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.contracts.adapters import audit_log
from services.contracts.adapters import repository as repo
from services.contracts.adapters.tables import ChangePolicyRow, ChangeRequestRow, ContractRow, TrancheLockRow
from services.contracts.domain import lifecycle as states
from services.contracts.domain.amendments import AmendmentFacts, amendment_document
from services.contracts.domain.change_requests import (DEFAULT_CHANGE_POLICY, Amended, Assessment, ChangePolicy,
                                                       ChangeReview, ChangeStatus, ProposedChange, TRANSITIONS,
                                                       apply_change, assessment_due, ensure_allowed, find_overlap,
                                                       price_change)
from services.contracts.domain.document import ContractDocument
from services.contracts.domain.drafting import draft
from services.contracts.service_layer import drafting
from services.contracts.service_layer.lifecycle import contract, document_of, snapshot, terms_of, version
from shared.auth import Principal
from shared.business_calendar import BusinessCalendar
from shared.errors import Conflict, Forbidden, NotFound
from shared.events.change_requests import (ChangeRequestApproved, ChangeRequestAssessed, ChangeRequestImplemented,
                                           ChangeRequestOverdue, ChangeRequestRejected, ChangeRequestSubmitted,
                                           ChangeRequestWithdrawn)
from shared.events.contracts import ContractAmended
from shared.scheduler import claim
from shared.uow import UnitOfWork

# A contract without a change-control response time still gets an answer within this.
DEFAULT_RESPONSE = (5, "working_days")


# --- reading ---------------------------------------------------------------------------------------

def change_request(session: Session, org: str, request_id: str, *, lock: bool = False) -> ChangeRequestRow:
    query = select(ChangeRequestRow).where(ChangeRequestRow.id == request_id, ChangeRequestRow.org == org)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No change request {request_id}.")
    return row


def of_contract(session: Session, org: str, contract_id: str) -> list[ChangeRequestRow]:
    contract(session, org, contract_id)
    return list(session.execute(select(ChangeRequestRow).where(
        ChangeRequestRow.contract_id == contract_id, ChangeRequestRow.org == org)
        .order_by(ChangeRequestRow.number)).scalars())


def proposed(row: ChangeRequestRow) -> ProposedChange:
    return ProposedChange.model_validate(row.changes["proposed"])


def locked_tranches(session: Session, contract_id: str) -> dict[str, str]:
    rows = session.execute(select(TrancheLockRow).where(TrancheLockRow.contract_id == contract_id)).scalars()
    return {r.tranche_key: r.state for r in rows}


def policy(session: Session, org: str) -> ChangePolicy:
    stored = repo.policy(session, ChangePolicyRow, org)
    return ChangePolicy.model_validate(stored) if stored else DEFAULT_CHANGE_POLICY


def set_policy(uow: UnitOfWork, who: Principal, new: ChangePolicy, now: dt.datetime) -> ChangePolicy:
    stored = new.model_dump(mode="json")
    before = repo.replace_policy(uow.session, ChangePolicyRow, who.org, stored, who.sub, now)
    audit_log.append(uow.session, stream=f"change-policy:{who.org}", org=who.org, actor=who.sub,
                     action="change_policy.changed", before=before, after=stored)
    return new


# --- raising ---------------------------------------------------------------------------------------

def raise_request(uow: UnitOfWork, library: drafting.Library, who: Principal, contract_id: str, *, title: str,
                  description: str, reason: str, kinds: list[str], change: ProposedChange,
                  now: dt.datetime) -> ChangeRequestRow:
    """A draft request against the contract's current version, refused now if it could never apply."""
    session = uow.session
    row = contract(session, who.org, contract_id, lock=True)
    if row.status not in states.IN_FORCE:
        raise Conflict(f"Change requests are raised against a signed or active contract; this one is '{row.status}'.",
                       current_state=row.status)
    _amended(session, library, row, change)   # validation only: every refusal is reported at once
    number = (session.execute(select(func.max(ChangeRequestRow.number)).where(
        ChangeRequestRow.contract_id == row.id)).scalar() or 0) + 1
    cr = ChangeRequestRow(id=uuid.uuid4().hex, org=who.org, contract_id=row.id, number=number, title=title,
                          reason=reason, status=ChangeStatus.DRAFT, base_version=row.version,
                          changes={"kinds": kinds, "description": description,
                                   "proposed": change.model_dump(mode="json", exclude_defaults=True)},
                          revision=1, raised_by=who.sub, created_at=now, updated_at=now)
    session.add(cr)
    session.flush()
    _audit(session, cr, who.sub, "change_request.raised", None)
    return cr


def _amended(session: Session, library: drafting.Library, row: ContractRow, change: ProposedChange
             ) -> tuple[Amended, Any]:
    """The change applied to the current version and drafted again (nothing stored)."""
    current = version(session, row, row.version)
    amended = apply_change(current.variables, drafting.position_inputs(current.positions), change,
                           locked_tranches(session, row.id))
    template = library.template(current.template_key)
    drafted = draft(template, current.language, amended.variables, amended.positions, version=row.version + 1)
    return amended, drafted


# --- the state machine -----------------------------------------------------------------------------

def submit(uow: UnitOfWork, who: Principal, request_id: str, now: dt.datetime) -> ChangeRequestRow:
    """The clock of the change-control clause starts: assessment due in N working days."""
    def change(cr: ChangeRequestRow, row: ContractRow) -> None:
        terms = terms_of(row, version(uow.session, row, row.version))
        days, unit = (terms.change_response.days, terms.change_response.unit) if terms.change_response \
            else DEFAULT_RESPONSE
        cr.submitted_at = now
        cr.assessment_due_at = assessment_due(now, days, unit, _calendar(terms))
        uow.emit(ChangeRequestSubmitted(**_fields(cr), assessment_due_at=cr.assessment_due_at))
    return _transition(uow, who, request_id, "submit", now, change)


def assess(uow: UnitOfWork, library: drafting.Library, who: Principal, request_id: str,
           assessment: Assessment, now: dt.datetime) -> ChangeRequestRow:
    """Record the impact; the approval chain follows from kind and cost. A request whose base was
    amended in the meantime is assessed against the contract as it is now (and checked again)."""
    def change(cr: ChangeRequestRow, row: ContractRow) -> None:
        if cr.base_version != row.version:
            _amended(uow.session, library, row, proposed(cr))
            cr.base_version = row.version
        cr.assessment = {**assessment.model_dump(mode="json"), "by": who.sub, "at": now.isoformat()}
        review = ChangeReview.open(policy(uow.session, cr.org), set(cr.changes["kinds"]), assessment.cost)
        cr.review = review.to_dict()
        uow.emit(ChangeRequestAssessed(**_fields(cr), cost=assessment.cost, schedule_days=assessment.schedule_days,
                                       risk=assessment.risk, approval_steps=[s["key"] for s in review.steps]))
    return _transition(uow, who, request_id, "assess", now, change)


def approve(uow: UnitOfWork, who: Principal, request_id: str, comment: str | None,
            now: dt.datetime) -> ChangeRequestRow:
    def change(cr: ChangeRequestRow, row: ContractRow) -> dict:
        review = ChangeReview.from_dict(cr.review)
        last = review.approve(who.sub, who.roles, cr.raised_by, now, comment)
        cr.review = review.to_dict()
        if last:
            uow.emit(ChangeRequestApproved(**_fields(cr)))
            return {"status": ChangeStatus.APPROVED}
        return {"status": ChangeStatus.ASSESSED}
    return _transition(uow, who, request_id, "approve", now, change)


def reject(uow: UnitOfWork, who: Principal, request_id: str, comment: str, now: dt.datetime) -> ChangeRequestRow:
    def change(cr: ChangeRequestRow, row: ContractRow) -> None:
        review = ChangeReview.from_dict(cr.review)
        if cr.status == ChangeStatus.ASSESSED:
            review.reject(who.sub, who.roles, cr.raised_by, now, comment)
        elif who.sub == cr.raised_by:
            raise Forbidden("Four eyes: whoever raised a change request cannot decide on it; withdraw it instead.")
        else:
            review.decisions.append({"step": "screening", "decision": "rejected", "by": who.sub,
                                     "at": now.isoformat(), "comment": comment})
        cr.review = review.to_dict()
        uow.emit(ChangeRequestRejected(**_fields(cr), rejected_by=who.sub, comment=comment))
    return _transition(uow, who, request_id, "reject", now, change)


def withdraw(uow: UnitOfWork, who: Principal, request_id: str, now: dt.datetime) -> ChangeRequestRow:
    def change(cr: ChangeRequestRow, row: ContractRow) -> None:
        if who.sub != cr.raised_by and not (who.roles & {"legal", "admin"}):
            raise Forbidden("Only whoever raised a change request (or legal) can withdraw it.")
        uow.emit(ChangeRequestWithdrawn(**_fields(cr)))
    return _transition(uow, who, request_id, "withdraw", now, change)


def implement(uow: UnitOfWork, library: drafting.Library, who: Principal, request_id: str,
              now: dt.datetime) -> tuple[ChangeRequestRow, ContractRow]:
    """The amended version: drafted from the changed values; `contract.amended` with the full new terms.

    A request approved against an older version applies on top only if no request implemented
    since wrote any of the same things; otherwise 409, and it is assessed again.
    """
    def change(cr: ChangeRequestRow, row: ContractRow) -> None:
        mine = proposed(cr)
        if cr.base_version != row.version:
            _ensure_no_overlap(uow.session, cr, mine)
        amended, drafted = _amended(uow.session, library, row, mine)
        previous = version(uow.session, row, row.version)
        before = snapshot(row)
        new = drafting.append_version(uow.session, row, drafted, amended.variables, who.sub, now,
                                      reason=f"CR-{cr.number}: {cr.title}", change_request_id=cr.id)
        cr.implemented_version = new.version
        audit_log.record(uow.session, org=row.org, contract_id=row.id, actor=who.sub, action="contract.amended",
                         before=before, after=snapshot(row),
                         detail={"version": new.version, "change_request": f"CR-{cr.number}"})
        terms = terms_of(row, new)
        uow.emit(ContractAmended(contract_id=row.id, org=row.org, version=new.version,
                                 previous_version=previous.version, terms=terms,
                                 delta={**amended.delta, "change_request": f"CR-{cr.number}"}))
        uow.emit(ChangeRequestImplemented(**_fields(cr), new_version=new.version))
    cr = _transition(uow, who, request_id, "implement", now, change)
    return cr, contract(uow.session, who.org, cr.contract_id)


def _ensure_no_overlap(session: Session, cr: ChangeRequestRow, mine: ProposedChange) -> None:
    since = session.execute(select(ChangeRequestRow).where(
        ChangeRequestRow.contract_id == cr.contract_id, ChangeRequestRow.status == ChangeStatus.IMPLEMENTED,
        ChangeRequestRow.implemented_version > cr.base_version)).scalars()
    for other in since:
        overlap = find_overlap(proposed(other), mine)
        if overlap:
            raise Conflict(f"CR-{other.number} changed the contract since this request was assessed and wrote the "
                           f"same: {', '.join(sorted(overlap))}. Assess this request again against version "
                           f"{other.implemented_version}.", overlapping=sorted(overlap),
                           implemented_by=f"CR-{other.number}", allowed_transitions=["assess"])


def _transition(uow: UnitOfWork, who: Principal, request_id: str, command: str, now: dt.datetime,
                change: Callable[[ChangeRequestRow, ContractRow], dict | None]) -> ChangeRequestRow:
    cr = change_request(uow.session, who.org, request_id, lock=True)
    ensure_allowed(command, cr.status)
    row = contract(uow.session, who.org, cr.contract_id, lock=True)
    before = _snapshot(cr)
    outcome = change(cr, row) or {}
    cr.status = outcome.get("status") or _target(command)
    cr.revision += 1
    cr.updated_at = now
    uow.session.flush()
    _audit(uow.session, cr, who.sub, f"change_request.{command}", before)
    return cr


def _target(command: str) -> ChangeStatus:
    return TRANSITIONS[command][1]


# --- the response-time timer -----------------------------------------------------------------------

def announce_overdue(uow_factory: Callable[[], UnitOfWork], now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """`change_request.overdue` for every submitted request not assessed in time, once each.

    The conditional UPDATE is the claim: with several replicas only one turns `overdue_at` from
    NULL to now, and only that one announces it.
    """
    with uow_factory() as uow:
        due = list(uow.session.execute(select(ChangeRequestRow.id).where(
            ChangeRequestRow.status == ChangeStatus.SUBMITTED, ChangeRequestRow.overdue_at.is_(None),
            ChangeRequestRow.assessment_due_at <= now)).scalars())
    announced = 0
    for request_id in due:
        with uow_factory() as uow:
            if not claim(uow.session, ChangeRequestRow.__table__, request_id, expect_overdue_at=None,
                         expect_status=ChangeStatus.SUBMITTED.value, overdue_at=now):
                continue
            cr = uow.session.get(ChangeRequestRow, request_id)
            uow.emit(ChangeRequestOverdue(**_fields(cr), assessment_due_at=cr.assessment_due_at))
            _audit(uow.session, cr, "system:change-control", "change_request.overdue", None)
            uow.commit()
            announced += 1
    with uow_factory() as uow:
        return announced, next_deadline(uow.session)


def next_deadline(session: Session) -> dt.datetime | None:
    """The earliest assessment deadline still to watch (the scheduler wakes up for it)."""
    return session.execute(select(func.min(ChangeRequestRow.assessment_due_at)).where(
        ChangeRequestRow.status == ChangeStatus.SUBMITTED, ChangeRequestRow.overdue_at.is_(None))).scalar()


# --- what payments tells us ------------------------------------------------------------------------

def lock_tranche(uow: UnitOfWork, org: str, contract_id: str, tranche_key: str, state: str, at: dt.datetime) -> None:
    """Invoiced or paid: from now on a change request cannot touch the tranche. Paid outranks invoiced."""
    row = uow.session.get(TrancheLockRow, (contract_id, tranche_key))
    if row is None:
        uow.session.add(TrancheLockRow(contract_id=contract_id, tranche_key=tranche_key, org=org, state=state,
                                       updated_at=at))
    elif state == "paid":
        row.state, row.updated_at = state, at


# --- documents -------------------------------------------------------------------------------------

def amendment(session: Session, org: str, request_id: str) -> tuple[ChangeRequestRow, ContractDocument,
                                                                   ContractDocument, ContractDocument]:
    """The amendment document of an implemented request, and the two versions it is between."""
    cr = change_request(session, org, request_id)
    if cr.implemented_version is None:
        raise Conflict(f"CR-{cr.number} is not implemented yet; it has no amendment.", current_state=cr.status)
    row = contract(session, org, cr.contract_id)
    new = version(session, row, cr.implemented_version)
    old = version(session, row, cr.implemented_version - 1)
    terms = terms_of(row, new)
    amendments_before = session.execute(select(func.count()).select_from(ChangeRequestRow).where(
        ChangeRequestRow.contract_id == row.id, ChangeRequestRow.implemented_version.is_not(None),
        ChangeRequestRow.implemented_version <= cr.implemented_version)).scalar()
    facts = AmendmentFacts(number=amendments_before, change_request=f"CR-{cr.number}", contract_number=row.number,
                           contract_title=row.title, base_version=old.version,
                           signed_on=row.signed_at.date().isoformat() if row.signed_at else None,
                           currency=terms.currency)
    delta = _delta_between(old.variables, new.variables)
    return cr, amendment_document(document_of(old), document_of(new), delta, facts), document_of(old), \
        document_of(new)


def _delta_between(old: dict, new: dict) -> dict:
    before, after = Decimal(str(old["total_price"]["amount"])), Decimal(str(new["total_price"]["amount"]))
    return {} if before == after else {"total_price": price_change(before, after)}


# --- helpers ---------------------------------------------------------------------------------------

def _fields(cr: ChangeRequestRow) -> dict:
    return {"contract_id": cr.contract_id, "org": cr.org, "change_request_id": cr.id, "number": f"CR-{cr.number}",
            "title": cr.title, "kinds": cr.changes["kinds"], "base_version": cr.base_version}


def _snapshot(cr: ChangeRequestRow) -> dict:
    return cr.model_dump()


def _audit(session: Session, cr: ChangeRequestRow, actor: str, action: str, before: dict | None) -> None:
    audit_log.record(session, org=cr.org, contract_id=cr.contract_id, actor=actor, action=action, before=before,
                     after=_snapshot(cr), detail={"change_request": f"CR-{cr.number}"})


def _calendar(terms) -> BusinessCalendar:
    """Working days of the mainland-China calendar, in the contract's time zone when it has service hours."""
    zone = terms.sla.service_hours.timezone if terms.sla else "Asia/Shanghai"
    return BusinessCalendar.office_hours(timezone=zone)
