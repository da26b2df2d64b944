"""Read models of the contracts service: queries shaped for the API, no writes.

Every read function takes the service's `Database` first and opens its own read session, so
routes never open one; what it returns is plain (aggregates, stored versions, JSON-ready dicts)
and outlives the session. The `*_json` shapers are the API's answers, shared by the routes and by
the use cases whose answer is stored with an Idempotency-Key.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from services.contracts.adapters.audit_log import AuditLog, contract_stream
from services.contracts.adapters.repository import (ChangeRequestRepository, ClauseVersionRepository,
                                                    ContractFilter, ContractRepository, PolicyRepository,
                                                    TrancheLockRepository)
from services.contracts.domain import lifecycle as states
from services.contracts.domain.amendments import AmendmentFacts, amendment_document
from services.contracts.domain.approvals import DEFAULT_POLICY, ApprovalPolicy
from services.contracts.domain.audit import AuditEntry, verify_stream
from services.contracts.domain.change_request import ChangeRequest
from services.contracts.domain.change_approval import DEFAULT_CHANGE_POLICY, ChangePolicy
from services.contracts.domain.change_requests import allowed_commands, price_change
from services.contracts.domain.compare import VersionView
from services.contracts.domain.contract import (Contract, document_of, etag, position_keys, terms_of,
                                                version_findings)
from services.contracts.domain.document import ContractDocument
from shared.db import Database
from shared.errors import Conflict

__all__ = ["ContractFilter"]


# --- the library as the organisation sees it ---------------------------------------------------------

def library(db: Database, catalogue, org: str):
    """The organisation's library (the built-in one with its own clause versions on top)."""
    with db.read_session() as session:
        return catalogue.of(ClauseVersionRepository(session), org)


# --- contracts and their versions --------------------------------------------------------------------

def contract(db: Database, org: str, contract_id: str, number: int | None = None) -> tuple[Contract, Any]:
    """The contract and one of its versions (default: the current one); 404 for another organisation."""
    with db.read_session() as session:
        contracts = ContractRepository(session)
        found = contracts.get(org, contract_id)
        return found, contracts.version(found, number or found.version)


def vendor_party_of(db: Database, org: str, contract_id: str) -> str | None:
    """The contract's vendor party (credit code), what counterparty scoping compares; 404 for another org."""
    with db.read_session() as session:
        return ContractRepository(session).vendor_party(org, contract_id)


def versions(db: Database, org: str, contract_id: str) -> tuple[Contract, list]:
    with db.read_session() as session:
        contracts = ContractRepository(session)
        found = contracts.get(org, contract_id)
        return found, contracts.versions(found.id)


def two_versions(db: Database, org: str, contract_id: str, first: int, second: int) -> tuple[Contract, Any, Any]:
    with db.read_session() as session:
        contracts = ContractRepository(session)
        found = contracts.get(org, contract_id)
        return found, contracts.version(found, first), contracts.version(found, second)


def search(db: Database, org: str, where: ContractFilter, after: tuple[dt.datetime, str] | None,
           limit: int) -> list[Contract]:
    """Newest first; `after` is the (created_at, id) of the last contract of the previous page."""
    with db.read_session() as session:
        return ContractRepository(session).search(org, where, after, limit)


def findings(db: Database, org: str, contract_id: str, number: int | None) -> tuple[Any, list]:
    """The risk checks of a version (default: the current one) with the organisation's limits."""
    with db.read_session() as session:
        contracts = ContractRepository(session)
        found = contracts.get(org, contract_id)
        checked = contracts.version(found, number or found.version)
        return checked, version_findings(found, checked, _approval_policy(PolicyRepository(session), org))


# --- the lifecycle -----------------------------------------------------------------------------------

def lifecycle(db: Database, org: str, contract_id: str) -> tuple[Contract, list, list]:
    """The contract, every decision of every review round, and the signatures of its version."""
    with db.read_session() as session:
        contracts = ContractRepository(session)
        found = contracts.get(org, contract_id)
        return found, contracts.decisions(found), contracts.signatures(found)


def signed_document(db: Database, org: str, contract_id: str) -> tuple[Contract, Any]:
    with db.read_session() as session:
        contracts = ContractRepository(session)
        found = contracts.get(org, contract_id)
        return found, contracts.signed_document(found)


def audit_trail(db: Database, org: str, contract_id: str) -> tuple[list[AuditEntry], list]:
    """The contract's audit chain and whatever breaks it (nothing, unless someone edited the table)."""
    with db.read_session() as session:
        ContractRepository(session).get(org, contract_id)
        entries, head = AuditLog(session).stream(contract_stream(contract_id))
    return entries, verify_stream(entries, head)


def approval_policy(db: Database, org: str) -> ApprovalPolicy:
    with db.read_session() as session:
        return _approval_policy(PolicyRepository(session), org)


def _approval_policy(policies: PolicyRepository, org: str) -> ApprovalPolicy:
    stored = policies.get("approval", org)
    return ApprovalPolicy.model_validate(stored) if stored else DEFAULT_POLICY


def version_view(version: Any) -> VersionView:
    """A stored version as the comparison reads it."""
    return VersionView(number=version.version, variables=version.variables, positions=position_keys(version),
                       clause_versions=dict(version.clause_versions or {}), document=document_of(version))


# --- change requests ---------------------------------------------------------------------------------

def change_requests_of(db: Database, org: str, contract_id: str) -> list[ChangeRequest]:
    with db.read_session() as session:
        ContractRepository(session).get(org, contract_id)
        return ChangeRequestRepository(session).of_contract(org, contract_id)


def change_request(db: Database, org: str, request_id: str) -> ChangeRequest:
    with db.read_session() as session:
        return ChangeRequestRepository(session).get(org, request_id)


def change_policy(db: Database, org: str) -> ChangePolicy:
    with db.read_session() as session:
        stored = PolicyRepository(session).get("change", org)
    return ChangePolicy.model_validate(stored) if stored else DEFAULT_CHANGE_POLICY


def locked_tranches(db: Database, contract_id: str) -> dict[str, str]:
    """tranche key -> invoiced | paid, as payments' events told us."""
    with db.read_session() as session:
        return TrancheLockRepository(session).of_contract(contract_id)


def amendment(db: Database, org: str, request_id: str) -> tuple[ChangeRequest, ContractDocument,
                                                                ContractDocument, ContractDocument]:
    """The amendment document of an implemented request, and the two versions it is between."""
    with db.read_session() as session:
        requests, contracts = ChangeRequestRepository(session), ContractRepository(session)
        cr = requests.get(org, request_id)
        if cr.implemented_version is None:
            raise Conflict(f"CR-{cr.number} is not implemented yet; it has no amendment.", current_state=cr.status)
        found = contracts.get(org, cr.contract_id)
        new = contracts.version(found, cr.implemented_version)
        old = contracts.version(found, cr.implemented_version - 1)
        amendments_before = requests.amendments_up_to(found.id, cr.implemented_version)
    terms = terms_of(found, new)
    facts = AmendmentFacts(number=amendments_before, change_request=cr.label, contract_number=found.number,
                           contract_title=found.title, base_version=old.version,
                           signed_on=found.signed_at.date().isoformat() if found.signed_at else None,
                           currency=terms.currency)
    delta = _delta_between(old.variables, new.variables)
    return cr, amendment_document(document_of(old), document_of(new), delta, facts), document_of(old), \
        document_of(new)


def _delta_between(old: dict, new: dict) -> dict:
    before, after = Decimal(str(old["total_price"]["amount"])), Decimal(str(new["total_price"]["amount"]))
    return {} if before == after else {"total_price": price_change(before, after)}


# --- the answers -------------------------------------------------------------------------------------

def contract_json(contract: Contract, current: Any) -> dict[str, Any]:
    return {"id": contract.id, "number": contract.number, "title": contract.title, "kind": contract.kind,
            "language": contract.language, "status": contract.status, "version": contract.version,
            "etag": etag(contract.version),
            "allowed_transitions": states.allowed_commands(states.Status(contract.status)),
            "template": {"key": current.template_key, "version": current.template_version},
            "terms": terms_of(contract, current).model_dump(mode="json"),
            "deviations": current.deviations, "positions": current.positions,
            "clause_versions": current.clause_versions, "variables": current.variables,
            "created_by": contract.created_by, "created_at": contract.created_at.isoformat(),
            "updated_at": contract.updated_at.isoformat()}


def summary_json(contract: Contract) -> dict[str, Any]:
    return {"id": contract.id, "number": contract.number, "title": contract.title, "kind": contract.kind,
            "language": contract.language, "status": contract.status, "version": contract.version,
            "client": contract.client_name, "vendor": contract.vendor_name, "currency": contract.currency,
            "total_amount": format(Decimal(contract.total_amount).quantize(Decimal("0.01")), "f"),
            "effective_date": contract.effective_date.isoformat(), "end_date": contract.end_date.isoformat(),
            "created_at": contract.created_at.isoformat()}


def version_summary_json(v: Any) -> dict[str, Any]:
    return {"version": v.version, "template": {"key": v.template_key, "version": v.template_version},
            "language": v.language, "reason": v.reason, "deviations": len(v.deviations or []),
            "docx_sha256": v.docx_sha256, "created_by": v.created_by, "created_at": v.created_at.isoformat()}


def version_json(contract: Contract, v: Any) -> dict[str, Any]:
    return {**version_summary_json(v), "contract_id": contract.id, "etag": etag(v.version), "variables": v.variables,
            "values": v.values, "positions": v.positions, "deviations": v.deviations,
            "clause_versions": v.clause_versions, "terms": terms_of(contract, v).model_dump(mode="json")}


def lifecycle_json(contract: Contract) -> dict[str, Any]:
    return {"id": contract.id, "status": contract.status, "version": contract.version, "revision": contract.revision,
            "allowed_transitions": states.allowed_commands(states.Status(contract.status)), "review": contract.review,
            "signed_version": contract.signed_version, "signed_sha256": contract.signed_sha256,
            "signed_at": _iso(contract.signed_at), "effective_date": contract.effective_date.isoformat(),
            "end_date": contract.end_date.isoformat(), "activated_on": _iso(contract.activated_on),
            "ended_on": _iso(contract.ended_on)}


def change_request_json(cr: ChangeRequest) -> dict[str, Any]:
    return {"id": cr.id, "contract_id": cr.contract_id, "number": cr.label, "title": cr.title,
            "description": cr.changes.get("description"), "reason": cr.reason, "kinds": cr.kinds,
            "status": cr.status, "allowed_transitions": allowed_commands(cr.status),
            "base_version": cr.base_version, "changes": cr.changes["proposed"], "assessment": cr.assessment,
            "review": cr.review, "raised_by": cr.raised_by,
            "submitted_at": _iso(cr.submitted_at), "assessment_due_at": _iso(cr.assessment_due_at),
            "overdue": cr.overdue_at is not None, "implemented_version": cr.implemented_version,
            "revision": cr.revision, "created_at": _iso(cr.created_at), "updated_at": _iso(cr.updated_at)}


def _iso(value) -> str | None:
    return value.isoformat() if value else None
