"""Lifecycle use cases: review and approval, signatures, key dates, comparison and the audit trail.

Every command runs in one unit of work: it locks the contract row, checks the state allows the
command (409 naming the allowed ones otherwise), changes the state, bumps the revision, appends
to the contract's audit chain and emits its event through the outbox, all in one transaction.
The scheduler's key-date changes claim the row with a conditional UPDATE first, so two
schedulers (or a scheduler and a request) never announce the same change twice.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Callable
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.contracts.adapters import audit_log
from services.contracts.adapters import repository as repo
from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.tables import (ApprovalDecisionRow, ApprovalPolicyRow, ContractRow,
                                                ContractVersionRow, SignatureRow, SignedDocumentRow)
from services.contracts.domain import lifecycle, risk_checks
from services.contracts.domain.approvals import DEFAULT_POLICY, ApprovalPolicy, Review, ReviewFacts
from services.contracts.domain.audit import AuditEntry, verify_stream
from services.contracts.domain.compare import VersionView
from services.contracts.domain.document import ContractDocument
from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.events.contracts import (ContractActivated, ContractApproved, ContractCompleted, ContractExpired,
                                     ContractRejected, ContractRenewalDue, ContractSignatureRequested,
                                     ContractSigned, ContractSubmitted, ContractTerminated, ContractTerms)
from shared.scheduler import claim
from shared.uow import UnitOfWork

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHEDULER = "system:contracts-key-dates"
DOCUMENT = TypeAdapter(ContractDocument)


def local_date(at: dt.datetime) -> dt.date:
    """Contract dates are Asia/Shanghai dates."""
    return at.astimezone(SHANGHAI).date()


def new_id() -> str:
    return uuid.uuid4().hex


# --- reading ---------------------------------------------------------------------------------------

def contract(session: Session, org: str, contract_id: str, *, lock: bool = False) -> ContractRow:
    query = select(ContractRow).where(ContractRow.id == contract_id, ContractRow.org == org)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No contract {contract_id}.")
    return row


def version(session: Session, row: ContractRow, number: int) -> ContractVersionRow:
    found = session.execute(select(ContractVersionRow).where(
        ContractVersionRow.contract_id == row.id, ContractVersionRow.version == number)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"Contract {row.id} has no version {number}.")
    return found


def document_of(version_row: ContractVersionRow) -> ContractDocument:
    return DOCUMENT.validate_python(version_row.document)


def terms_of(row: ContractRow, version_row: ContractVersionRow) -> ContractTerms:
    """The full structured terms of a version, with the ids that make them this contract's."""
    return ContractTerms.model_validate({**version_row.terms, "contract_id": row.id, "org": row.org,
                                         "version": version_row.version})


def deviations_of(version_row: ContractVersionRow) -> list[dict]:
    """The version's non-standard positions as the policy and risk checks read them."""
    return [{"clause": d.get("clause") or d.get("clause_key"), "kind": d.get("kind"),
             "position": d.get("position") or d.get("kind")} for d in version_row.deviations or []]


def position_keys(version_row: ContractVersionRow) -> dict[str, str]:
    """clause key -> the position drafted ("standard", a fallback's key, "custom" or "omitted")."""
    def key(choice) -> str:
        if isinstance(choice, dict):
            return choice.get("key") if choice.get("kind") in ("standard", "fallback") and choice.get("key") \
                else choice.get("kind", "standard")
        return str(choice)
    return {clause: key(choice) for clause, choice in (version_row.positions or {}).items()}


def snapshot(row: ContractRow) -> dict:
    """The contract's state as hashed into the audit chain."""
    return row.model_dump()


def signatures(session: Session, row: ContractRow) -> list[SignatureRow]:
    return list(session.execute(select(SignatureRow).where(
        SignatureRow.contract_id == row.id, SignatureRow.version == row.version)
        .order_by(SignatureRow.signed_at, SignatureRow.party)).scalars())


def signed_document(session: Session, row: ContractRow) -> SignedDocumentRow | None:
    return session.execute(select(SignedDocumentRow).where(
        SignedDocumentRow.contract_id == row.id, SignedDocumentRow.version == row.signed_version)).scalar_one_or_none()


def decisions(session: Session, row: ContractRow) -> list[ApprovalDecisionRow]:
    return list(session.execute(select(ApprovalDecisionRow).where(ApprovalDecisionRow.contract_id == row.id)
                                .order_by(ApprovalDecisionRow.round, ApprovalDecisionRow.decided_at,
                                          ApprovalDecisionRow.id)).scalars())


# --- the approval policy ---------------------------------------------------------------------------

def policy(session: Session, org: str) -> ApprovalPolicy:
    stored = repo.policy(session, ApprovalPolicyRow, org)
    return ApprovalPolicy.model_validate(stored) if stored else DEFAULT_POLICY


def set_policy(uow: UnitOfWork, org: str, actor: str, new: ApprovalPolicy, now: dt.datetime) -> ApprovalPolicy:
    stored = new.model_dump(mode="json")
    before = repo.replace_policy(uow.session, ApprovalPolicyRow, org, stored, actor, now)
    audit_log.append(uow.session, stream=f"policy:{org}", org=org, actor=actor, action="approval_policy.changed",
                     before=before, after=stored)
    return new


# --- commands --------------------------------------------------------------------------------------

def _command(uow: UnitOfWork, org: str, contract_id: str, name: str, actor: str, now: dt.datetime,
             change: Callable[[ContractRow], dict | None]) -> ContractRow:
    """Lock, check the state allows `name`, change, and append to the audit chain."""
    row = contract(uow.session, org, contract_id, lock=True)
    lifecycle.ensure_allowed(name, row.status)
    before = snapshot(row)
    detail = change(row) or {}
    _changed(uow.session, row, actor, now, detail.pop("action", f"contract.{name}"), before, detail)
    return row


def _changed(session: Session, row: ContractRow, actor: str, now: dt.datetime, action: str, before: dict,
             detail: dict) -> None:
    row.revision += 1
    row.updated_at = now
    session.flush()
    audit_log.record(session, org=row.org, contract_id=row.id, actor=actor, action=action, before=before,
                     after=snapshot(row), detail=detail)


def _lifecycle_fields(row: ContractRow) -> dict:
    return {"contract_id": row.id, "org": row.org, "version": row.version, "number": row.number, "title": row.title}


def submit(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime) -> ContractRow:
    """draft → in_review: the policy and the risk checks decide what this version needs."""
    def change(row: ContractRow) -> dict:
        current = version(uow.session, row, row.version)
        rules = policy(uow.session, row.org)
        review = Review.open(((row.review or {}).get("round") or 0) + 1, row.version, rules,
                             _review_facts(row, current, rules))
        row.review = review.to_dict()
        row.status = lifecycle.Status.IN_REVIEW
        uow.emit(ContractSubmitted(**_lifecycle_fields(row), round=review.round,
                                   steps=[s["key"] for s in review.steps],
                                   blocking_findings=[b["id"] for b in review.blockers]))
        _close_if_complete(uow, row, review)
        return {"action": "contract.submitted", "round": review.round}
    return _command(uow, who.org, contract_id, "submit", who.sub, now, change)


def _review_facts(row: ContractRow, current: ContractVersionRow, rules: ApprovalPolicy) -> ReviewFacts:
    blocking = [f for f in version_findings(row, current, rules) if f.blocking]
    return ReviewFacts(kind=row.kind, total_amount=row.total_amount, deviations=deviations_of(current),
                       blocking_findings=[{"id": f.id, "code": f.code, "clause": f.clause, "message": f.message}
                                          for f in blocking])


def version_findings(row: ContractRow, checked: ContractVersionRow, rules: ApprovalPolicy) -> list[risk_checks.Finding]:
    """The risk checks of one version, with the organisation's limits."""
    return risk_checks.check(risk_checks.VersionFacts(
        kind=row.kind, language=checked.language, variables=checked.variables, terms=terms_of(row, checked),
        document=document_of(checked), deviations=deviations_of(checked)), rules.risk_limits)


def _close_if_complete(uow: UnitOfWork, row: ContractRow, review: Review) -> None:
    if review.outcome == "approved":
        row.status = lifecycle.Status.APPROVED
        uow.emit(ContractApproved(**_lifecycle_fields(row), round=review.round))


def _record_decision(uow: UnitOfWork, row: ContractRow, review: Review, step: str, decision: str, by: str,
                     at: dt.datetime, comment: str | None, finding: str | None = None) -> None:
    uow.session.add(ApprovalDecisionRow(id=new_id(), org=row.org, contract_id=row.id, round=review.round,
                                        version=review.version, step=step, decision=decision, finding=finding,
                                        decided_by=by, decided_at=at, comment=comment))


def _authors(row: ContractRow) -> set[str]:
    return set(row.authors or []) | {row.created_by}


def approve(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime, step: str | None,
            comment: str | None) -> ContractRow:
    """One approval step; the last one (with every blocker overridden) makes the contract approved."""
    def change(row: ContractRow) -> dict:
        review = Review.from_dict(row.review)
        decision = review.approve(who.sub, who.roles, _authors(row), now, step, comment)
        _record_decision(uow, row, review, decision.step, "approved", who.sub, now, comment)
        row.review = review.to_dict()
        _close_if_complete(uow, row, review)
        return {"action": "contract.step_approved" if row.status == lifecycle.Status.IN_REVIEW
                else "contract.approved", "step": decision.step}
    return _command(uow, who.org, contract_id, "approve", who.sub, now, change)


def override(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime, finding: str,
             reason: str) -> ContractRow:
    """Let a blocking risk finding pass, on the record, with a reason."""
    def change(row: ContractRow) -> dict:
        review = Review.from_dict(row.review)
        review.override(who.sub, who.roles, _authors(row), now, finding, reason)
        _record_decision(uow, row, review, "risk_override", "override", who.sub, now, reason, finding)
        row.review = review.to_dict()
        _close_if_complete(uow, row, review)
        return {"action": "contract.finding_overridden", "finding": finding}
    return _command(uow, who.org, contract_id, "override", who.sub, now, change)


def reject(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime, comment: str) -> ContractRow:
    """Back to draft, with the comment on the record and on the contract's review."""
    def change(row: ContractRow) -> dict:
        review = Review.from_dict(row.review)
        decision = review.reject(who.sub, who.roles, _authors(row), now, comment)
        _record_decision(uow, row, review, decision.step, "rejected", who.sub, now, comment)
        row.review = review.to_dict()
        row.status = lifecycle.Status.DRAFT
        uow.emit(ContractRejected(**_lifecycle_fields(row), round=review.round, step=decision.step,
                                  rejected_by=who.sub, comment=comment))
        return {"action": "contract.rejected", "step": decision.step}
    return _command(uow, who.org, contract_id, "reject", who.sub, now, change)


def request_signatures(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime) -> ContractRow:
    def change(row: ContractRow) -> dict:
        row.status = lifecycle.Status.OUT_FOR_SIGNATURE
        uow.emit(ContractSignatureRequested(**_lifecycle_fields(row), parties=list(lifecycle.PARTIES)))
        return {"action": "contract.signature_requested"}
    return _command(uow, who.org, contract_id, "request-signature", who.sub, now, change)


def sign(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime, party: str, signatory: str,
         method: str) -> ContractRow:
    """One party's signature; with the last one the document is rendered and its SHA-256 frozen."""
    def change(row: ContractRow) -> dict:
        lifecycle.ensure_may_sign(party, who.roles)
        signed = {s.party for s in signatures(uow.session, row)}
        if party in signed:
            raise Conflict(f"The {party} has already signed version {row.version}.",
                           unsigned_parties=lifecycle.unsigned_parties(signed))
        uow.session.add(SignatureRow(id=new_id(), org=row.org, contract_id=row.id, version=row.version, party=party,
                                     signatory=signatory, method=method, signed_by=who.sub, signed_at=now))
        if lifecycle.unsigned_parties(signed | {party}):
            return {"action": "contract.party_signed", "party": party, "method": method}
        _seal(uow, row, now)
        return {"action": "contract.signed", "party": party, "method": method, "sha256": row.signed_sha256}
    return _command(uow, who.org, contract_id, "sign", who.sub, now, change)


def _seal(uow: UnitOfWork, row: ContractRow, now: dt.datetime) -> None:
    """Freeze the signed text: the DOCX byte for byte, its SHA-256 on the contract, the terms announced."""
    current = version(uow.session, row, row.version)
    content = render_docx(document_of(current))
    sha256 = hashlib.sha256(content).hexdigest()
    uow.session.add(SignedDocumentRow(id=new_id(), org=row.org, contract_id=row.id, version=row.version,
                                      kind="contract", sha256=sha256, content=content, created_at=now))
    row.status = lifecycle.Status.SIGNED
    row.signed_version, row.signed_sha256, row.signed_at = row.version, sha256, now
    uow.emit(ContractSigned(contract_id=row.id, org=row.org, version=row.version, terms=terms_of(row, current),
                            document_sha256=sha256, signed_on=local_date(now)))


def activate(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime) -> ContractRow:
    """signed → active by hand; never before the effective date (the scheduler does it on that day)."""
    def change(row: ContractRow) -> dict:
        lifecycle.ensure_effective(row.effective_date, local_date(now))
        _activate(uow, row, now)
        return {"action": "contract.activated"}
    return _command(uow, who.org, contract_id, "activate", who.sub, now, change)


def _activate(uow: UnitOfWork, row: ContractRow, now: dt.datetime) -> None:
    row.status, row.activated_on = lifecycle.Status.ACTIVE, local_date(now)
    _announce_activation(uow, row)


def _announce_activation(uow: UnitOfWork, row: ContractRow) -> None:
    """contract.activated with the terms as signed: what payments and SLA start from."""
    terms = terms_of(row, version(uow.session, row, row.signed_version or row.version))
    uow.emit(ContractActivated(contract_id=row.id, org=row.org, version=terms.version, terms=terms,
                               activated_on=row.activated_on))


def complete(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime) -> ContractRow:
    def change(row: ContractRow) -> dict:
        row.status, row.ended_on = lifecycle.Status.COMPLETED, local_date(now)
        uow.emit(ContractCompleted(**_lifecycle_fields(row), completed_on=row.ended_on))
        return {"action": "contract.completed"}
    return _command(uow, who.org, contract_id, "complete", who.sub, now, change)


def terminate(uow: UnitOfWork, who: Principal, contract_id: str, now: dt.datetime, reason: str) -> ContractRow:
    def change(row: ContractRow) -> dict:
        row.status, row.ended_on = lifecycle.Status.TERMINATED, local_date(now)
        uow.emit(ContractTerminated(contract_id=row.id, org=row.org, terminated_on=row.ended_on, reason=reason))
        return {"action": "contract.terminated", "reason": reason}
    return _command(uow, who.org, contract_id, "terminate", who.sub, now, change)


# --- key dates (the scheduler) ---------------------------------------------------------------------

def advance_key_dates(uow_factory: Callable[[], UnitOfWork], now: dt.datetime) -> tuple[int, dt.datetime]:
    """Activate, announce renewals and expire whatever today brings; one transaction per change."""
    today = local_date(now)
    with uow_factory() as uow:
        candidates = _needing_attention(uow.session, today)
    done = 0
    for contract_id in candidates:
        for _ in range(3):   # a contract can meet its effective date, renewal notice and end in one night
            with uow_factory() as uow:
                if not _advance_one(uow, contract_id, today, now):
                    break
                done += 1
    tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), SHANGHAI)
    return done, tomorrow.astimezone(dt.timezone.utc)


def _needing_attention(session: Session, today: dt.date) -> list[str]:
    """Contracts with something due today: a narrow indexed read, the exact rule applied here."""
    S = lifecycle.Status
    horizon = today + dt.timedelta(days=lifecycle.MAX_RENEWAL_NOTICE_DAYS)
    maybe = ((ContractRow.status == S.SIGNED) & (ContractRow.effective_date <= today)) \
        | ((ContractRow.status == S.ACTIVE) & (ContractRow.end_date < today)) \
        | (ContractRow.status.in_([S.SIGNED, S.ACTIVE]) & ContractRow.renewal_due_at.is_(None)
           & (ContractRow.end_date <= horizon))
    rows = session.execute(select(ContractRow.id, ContractRow.status, ContractRow.effective_date, ContractRow.end_date,
                                  ContractRow.renewal_notice_days, ContractRow.renewal_due_at)
                           .where(maybe).order_by(ContractRow.id))
    return [r.id for r in rows if lifecycle.key_date_due(r.status, r.effective_date, r.end_date, r.renewal_notice_days,
                                                         r.renewal_due_at is not None, today)]


def _advance_one(uow: UnitOfWork, contract_id: str, today: dt.date, now: dt.datetime) -> bool:
    """Claim the one key-date change due (conditional UPDATE on the revision), announce it, audit it."""
    row = uow.session.get(ContractRow, contract_id)
    due = row and lifecycle.key_date_due(row.status, row.effective_date, row.end_date, row.renewal_notice_days,
                                         row.renewal_due_at is not None, today)
    if not due:
        return False
    before, revision = snapshot(row), row.revision
    changes = {"activate": {"status": lifecycle.Status.ACTIVE.value, "activated_on": today},
               "expire": {"status": lifecycle.Status.EXPIRED.value, "ended_on": today},
               "renewal_due": {"renewal_due_at": now}}[due]
    if not claim(uow.session, ContractRow.__table__, row.id, expect_revision=revision, revision=revision + 1,
                 updated_at=now, **changes):
        uow.rollback()   # another scheduler (or a request) changed it first: its change stands
        return False
    uow.session.refresh(row)
    _announce_key_date(uow, row, due, today)
    audit_log.record(uow.session, org=row.org, contract_id=row.id, actor=SCHEDULER, action=KEY_DATE_ACTIONS[due],
                     before=before, after=snapshot(row))
    uow.commit()
    return True


KEY_DATE_ACTIONS = {"activate": "contract.activated", "expire": "contract.expired",
                    "renewal_due": "contract.renewal_due"}


def _announce_key_date(uow: UnitOfWork, row: ContractRow, due: str, today: dt.date) -> None:
    if due == "activate":
        _announce_activation(uow, row)
    elif due == "expire":
        uow.emit(ContractExpired(**_lifecycle_fields(row), expired_on=today))
    else:
        uow.emit(ContractRenewalDue(**_lifecycle_fields(row), end_date=row.end_date,
                                    notice_days=row.renewal_notice_days))


# --- comparison and audit --------------------------------------------------------------------------

def version_view(version_row: ContractVersionRow) -> VersionView:
    return VersionView(number=version_row.version, variables=version_row.variables,
                       positions=position_keys(version_row), clause_versions=dict(version_row.clause_versions or {}),
                       document=document_of(version_row))


def audit_trail(session: Session, org: str, contract_id: str) -> tuple[list[AuditEntry], list]:
    """The contract's audit chain and whatever breaks it (nothing, unless someone edited the table)."""
    contract(session, org, contract_id)
    stream = audit_log.contract_stream(contract_id)
    entries = audit_log.stream_entries(session, stream)
    return entries, verify_stream(entries, audit_log.head(session, stream))
