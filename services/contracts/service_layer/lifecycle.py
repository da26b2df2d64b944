"""Lifecycle use cases: review and approval, signatures, key dates and the approval policy.

Every command runs in one unit of work: it locks the contract, the `Contract` aggregate checks
the state allows the command (409 naming the allowed ones otherwise), changes itself and records
its event; the use case saves it, appends to the contract's audit chain and commits, so state,
audit entry and event (through the outbox) are one transaction. The scheduler's key-date changes
are saved with a conditional UPDATE on the revision they were read at, so two schedulers (or a
scheduler and a request) never announce the same change twice.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Callable

from services.contracts.adapters.docx_writer import render_docx
from services.contracts.domain import lifecycle as states
from services.contracts.domain.approvals import DEFAULT_POLICY, ApprovalPolicy, Review
from services.contracts.domain.contract import (KEY_DATE_ACTIONS, Contract, document_of, review_facts,
                                                terms_of)
from services.contracts.domain.document import ContractDocument
from services.contracts.service_layer import rendering
from services.contracts.service_layer.unit_of_work import ContractsUnitOfWork
from shared.auth import Principal
from shared.errors import Conflict
from shared.ids import new_id
from shared.local_time import local_date, next_local_midnight

SCHEDULER = "system:contracts-key-dates"


def approval_policy(policies, org: str) -> ApprovalPolicy:
    """The organisation's approval policy (the default until it sets one)."""
    stored = policies.get("approval", org)
    return ApprovalPolicy.model_validate(stored) if stored else DEFAULT_POLICY


def set_policy(uow: ContractsUnitOfWork, org: str, actor: str, new: ApprovalPolicy,
               now: dt.datetime) -> ApprovalPolicy:
    stored = new.model_dump(mode="json")
    with uow:
        before = uow.policies.replace("approval", org, stored, actor, now)
        uow.audit.append(stream=f"policy:{org}", org=org, actor=actor, action="approval_policy.changed",
                         before=before, after=stored)
        uow.commit()
    return new


# --- commands --------------------------------------------------------------------------------------

def _command(uow: ContractsUnitOfWork, org: str, contract_id: str, name: str, actor: str, now: dt.datetime,
             change: Callable[[Contract], dict | None]) -> Contract:
    """Lock, check the state allows `name`, change, save, audit and commit with the events."""
    with uow:
        contract = uow.contracts.get(org, contract_id, for_update=True)
        contract.ensure_allowed(name)
        before = contract.snapshot()
        detail = change(contract) or {}
        contract.changed(now)
        uow.contracts.save(contract)
        uow.audit.record(org=contract.org, contract_id=contract.id, actor=actor,
                         action=detail.pop("action", f"contract.{name}"), before=before,
                         after=contract.snapshot(), detail=detail)
        uow.collect(contract)
        uow.commit()
    return contract


def submit(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime) -> Contract:
    """draft → in_review: the policy and the risk checks decide what this version needs; the
    submitter, like its authors, decides none of it."""
    def change(contract: Contract) -> dict:
        current = uow.contracts.version(contract, contract.version)
        rules = approval_policy(uow.policies, contract.org)
        review = Review.open(((contract.review or {}).get("round") or 0) + 1, contract.version, rules,
                             review_facts(contract, current, rules), submitted_by=who.sub)
        contract.submit(review)
        return {"action": "contract.submitted", "round": review.round}
    return _command(uow, who.org, contract_id, "submit", who.sub, now, change)


def _record_decision(uow: ContractsUnitOfWork, contract: Contract, review: Review, step: str, decision: str,
                     by: str, at: dt.datetime, comment: str | None, finding: str | None = None) -> None:
    uow.contracts.add_decision(id=new_id(), org=contract.org, contract_id=contract.id, round=review.round,
                               version=review.version, step=step, decision=decision, finding=finding,
                               decided_by=by, decided_at=at, comment=comment)


def approve(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime, step: str | None,
            comment: str | None) -> Contract:
    """One approval step; the last one (with every blocker overridden) makes the contract approved."""
    def change(contract: Contract) -> dict:
        review = contract.current_review()
        decision = review.approve(who.sub, who.roles, contract.authors_of_versions, now, step, comment)
        _record_decision(uow, contract, review, decision.step, "approved", who.sub, now, comment)
        contract.reviewed(review)
        return {"action": "contract.step_approved" if contract.status == states.Status.IN_REVIEW
                else "contract.approved", "step": decision.step}
    return _command(uow, who.org, contract_id, "approve", who.sub, now, change)


def override(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime, finding: str,
             reason: str) -> Contract:
    """Let a blocking risk finding pass, on the record, with a reason."""
    def change(contract: Contract) -> dict:
        review = contract.current_review()
        review.override(who.sub, who.roles, contract.authors_of_versions, now, finding, reason)
        _record_decision(uow, contract, review, "risk_override", "override", who.sub, now, reason, finding)
        contract.reviewed(review)
        return {"action": "contract.finding_overridden", "finding": finding}
    return _command(uow, who.org, contract_id, "override", who.sub, now, change)


def reject(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime, comment: str) -> Contract:
    """Back to draft, with the comment on the record and on the contract's review."""
    def change(contract: Contract) -> dict:
        review = contract.current_review()
        decision = review.reject(who.sub, who.roles, contract.authors_of_versions, now, comment)
        _record_decision(uow, contract, review, decision.step, "rejected", who.sub, now, comment)
        contract.rejected(review, decision.step, who.sub, comment)
        return {"action": "contract.rejected", "step": decision.step}
    return _command(uow, who.org, contract_id, "reject", who.sub, now, change)


def request_signatures(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime) -> Contract:
    def change(contract: Contract) -> dict:
        contract.request_signatures()
        return {"action": "contract.signature_requested"}
    return _command(uow, who.org, contract_id, "request-signature", who.sub, now, change)


def sign(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime, party: str, signatory: str,
         method: str) -> Contract:
    """One party's signature; with the last one the document is rendered and its SHA-256 frozen.

    The DOCX is rendered before the write transaction opens: on SQLite that transaction holds the
    database's one write lock, and every consumer and request waiting behind a render of a long
    contract ended in "database is locked" (a consumer's event in its DLQ)."""
    rendered = rendering.ahead(uow, lambda: _document_if_last(uow, who.org, contract_id, party), render_docx)

    def change(contract: Contract) -> dict:
        states.ensure_may_sign(party, who.roles)
        signed = {s.party for s in uow.contracts.signatures(contract)}
        if party in signed:
            raise Conflict(f"The {party} has already signed version {contract.version}.",
                           unsigned_parties=states.unsigned_parties(signed))
        uow.contracts.add_signature(id=new_id(), org=contract.org, contract_id=contract.id, version=contract.version,
                                    party=party, signatory=signatory, method=method, signed_by=who.sub,
                                    signed_at=now)
        if states.unsigned_parties(signed | {party}):
            return {"action": "contract.party_signed", "party": party, "method": method}
        _seal(uow, contract, now, rendered)
        return {"action": "contract.signed", "party": party, "method": method, "sha256": contract.signed_sha256}
    return _command(uow, who.org, contract_id, "sign", who.sub, now, change)


def _document_if_last(uow: ContractsUnitOfWork, org: str, contract_id: str, party: str) -> ContractDocument | None:
    """The document to seal when `party`'s signature would be the last one; None otherwise (or when
    the contract is not there: the command says why)."""
    contract = uow.contracts.find(contract_id)
    if contract is None or contract.org != org:
        return None
    signed = {s.party for s in uow.contracts.signatures(contract)}
    if states.unsigned_parties(signed | {party}):
        return None
    return document_of(uow.contracts.version(contract, contract.version))


def _seal(uow: ContractsUnitOfWork, contract: Contract, now: dt.datetime,
          rendered: rendering.Ahead[ContractDocument, bytes] | None = None) -> None:
    """Freeze the signed text: the DOCX byte for byte, its SHA-256 on the contract, the terms announced."""
    current = uow.contracts.version(contract, contract.version)
    content = rendering.reuse(rendered, document_of(current), render_docx)   # rendered ahead unless it changed
    sha256 = hashlib.sha256(content).hexdigest()
    uow.contracts.add_signed_document(id=new_id(), org=contract.org, contract_id=contract.id,
                                      version=contract.version, kind="contract", sha256=sha256, content=content,
                                      created_at=now)
    contract.seal(sha256, now, terms_of(contract, current))


def _signed_terms(uow: ContractsUnitOfWork, contract: Contract):
    return terms_of(contract, uow.contracts.version(contract, contract.signed_version or contract.version))


def activate(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime) -> Contract:
    """signed → active by hand; never before the effective date (the scheduler does it on that day)."""
    def change(contract: Contract) -> dict:
        contract.activate_by_hand(local_date(now), _signed_terms(uow, contract))
        return {"action": "contract.activated"}
    return _command(uow, who.org, contract_id, "activate", who.sub, now, change)


def complete(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime) -> Contract:
    def change(contract: Contract) -> dict:
        contract.complete(local_date(now))
        return {"action": "contract.completed"}
    return _command(uow, who.org, contract_id, "complete", who.sub, now, change)


def terminate(uow: ContractsUnitOfWork, who: Principal, contract_id: str, now: dt.datetime,
              reason: str) -> Contract:
    def change(contract: Contract) -> dict:
        contract.terminate(local_date(now), reason)
        return {"action": "contract.terminated", "reason": reason}
    return _command(uow, who.org, contract_id, "terminate", who.sub, now, change)


# --- key dates (the scheduler) ---------------------------------------------------------------------

def advance_key_dates(uow_factory: Callable[[], ContractsUnitOfWork], now: dt.datetime) -> tuple[int, dt.datetime]:
    """Activate, announce renewals and expire whatever today brings; one transaction per change."""
    today = local_date(now)
    with uow_factory() as uow:
        candidates = uow.contracts.needing_attention(today)
    done = 0
    for contract_id in candidates:
        for _ in range(3):   # a contract can meet its effective date, renewal notice and end in one night
            if not advance_one(uow_factory(), contract_id, today, now):
                break
            done += 1
    return done, next_local_midnight(now)


def advance_one(uow: ContractsUnitOfWork, contract_id: str, today: dt.date, now: dt.datetime) -> bool:
    """The one key-date change due, saved only if nobody changed the contract since it was read."""
    with uow:
        contract = uow.contracts.find(contract_id)
        due = contract and contract.key_date_due(today)
        if not due:
            return False
        before, revision = contract.snapshot(), contract.revision
        contract.advance_key_date(due, today, now, _signed_terms(uow, contract) if due == "activate" else None)
        if not uow.contracts.save_claimed(contract, revision=revision):
            return False   # another scheduler (or a request) changed it first: its change stands
        uow.audit.record(org=contract.org, contract_id=contract.id, actor=SCHEDULER, action=KEY_DATE_ACTIONS[due],
                         before=before, after=contract.snapshot())
        uow.collect(contract)
        uow.commit()
    return True
