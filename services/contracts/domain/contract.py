"""The contract aggregate: its state through the lifecycle, and the events it records.

A `Contract` is what the lifecycle and drafting use cases load, change and save. It checks that
its state allows a command (409 naming the allowed ones otherwise), changes itself and records
the event that describes the change in `self.events`; the unit of work writes those to the
outbox when it commits. Its versions are immutable records the repository stores beside it;
the aggregate only needs the terms and the document of the one a change concerns, which the
use case hands it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from services.contracts.domain import lifecycle as states
from services.contracts.domain import risk_checks
from services.contracts.domain.approvals import ApprovalPolicy, Review, ReviewFacts
from services.contracts.domain.document import ContractDocument
from services.contracts.domain.stored import StoredAggregate
from shared.events.base import EventPayload
from shared.events.contracts import (ContractActivated, ContractAmended, ContractApproved, ContractCompleted,
                                     ContractDrafted, ContractExpired, ContractRejected, ContractRenewalDue,
                                     ContractSignatureRequested, ContractSigned, ContractSubmitted,
                                     ContractTerminated, ContractTerms)
from shared.local_time import local_date

Status = states.Status
DOCUMENT = TypeAdapter(ContractDocument)


@dataclass
class Contract(StoredAggregate):
    """A contract's current state (the columns of its row) and the events of its changes."""
    id: str
    org: str
    number: str
    title: str
    kind: str
    language: str
    template_key: str
    status: str
    version: int
    revision: int
    client_name: str
    vendor_name: str
    search_text: str
    currency: str
    total_amount: Decimal
    effective_date: dt.date
    end_date: dt.date
    renewal_notice_days: int
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    authors: list = field(default_factory=list)
    counterparty_text: str = ""
    vendor_party: str | None = None      # the vendor party's credit code (counterparty scoping)
    review: dict | None = None
    signed_version: int | None = None
    signed_sha256: str | None = None
    signed_at: dt.datetime | None = None
    activated_on: dt.date | None = None
    ended_on: dt.date | None = None
    renewal_due_at: dt.datetime | None = None
    events: list[EventPayload] = field(default_factory=list, repr=False, compare=False)

    # --- drafting -------------------------------------------------------------------------------

    @classmethod
    def drafted(cls, *, id: str, org: str, number: str, kind: str, language: str, template_key: str, author: str,
                now: dt.datetime, searched: dict[str, Any]) -> "Contract":
        """A new contract in draft, at version 1 (contract.drafted recorded)."""
        contract = cls(id=id, org=org, number=number, kind=kind, language=language, template_key=template_key,
                       status=Status.DRAFT, version=1, revision=1, authors=[author], created_by=author,
                       created_at=now, updated_at=now, **searched)
        contract._record_drafted()
        return contract

    def next_version(self, number: str, author: str, now: dt.datetime, searched: dict[str, Any]) -> int:
        """Become the next version (its searched columns along); the caller stores the version itself."""
        for name, value in searched.items():
            setattr(self, name, value)
        self.number, self.version, self.revision, self.updated_at = number, self.version + 1, self.revision + 1, now
        self.authors = sorted(set(self.authors or []) | {author})
        return self.version

    def revised(self, number: str, author: str, now: dt.datetime, searched: dict[str, Any]) -> int:
        """A new version of a draft (contract.drafted again, with the new version)."""
        self.ensure_allowed("edit")
        version = self.next_version(number, author, now, searched)
        self._record_drafted()
        return version

    def amended(self, number: str, author: str, now: dt.datetime, searched: dict[str, Any], terms: ContractTerms,
                delta: dict) -> int:
        """The version a change request makes of a signed or active contract (contract.amended)."""
        previous = self.version
        version = self.next_version(number, author, now, searched)
        self.events.append(ContractAmended(contract_id=self.id, org=self.org, version=version,
                                           previous_version=previous, terms=terms, delta=delta))
        return version

    def _record_drafted(self) -> None:
        self.events.append(ContractDrafted(contract_id=self.id, org=self.org, version=self.version,
                                           template=self.template_key, language=self.language, title=self.title))

    # --- the lifecycle --------------------------------------------------------------------------

    def ensure_allowed(self, command: str) -> None:
        states.ensure_allowed(command, self.status)

    def changed(self, now: dt.datetime) -> None:
        """Every change moves the revision (what the scheduler's conditional updates claim by)."""
        self.revision += 1
        self.updated_at = now

    @property
    def authors_of_versions(self) -> set[str]:
        """Whoever wrote a version (four eyes: they never decide on it)."""
        return set(self.authors or []) | {self.created_by}

    @property
    def in_force(self) -> bool:
        return self.status in states.IN_FORCE

    def submit(self, review: Review) -> None:
        """draft → in_review with the review the policy and the risk checks gave this version."""
        self.review = review.to_dict()
        self.status = Status.IN_REVIEW
        self.events.append(ContractSubmitted(**self._lifecycle_fields(), round=review.round,
                                             steps=[s["key"] for s in review.steps],
                                             blocking_findings=[b["id"] for b in review.blockers]))
        self._close_if_complete(review)

    def current_review(self) -> Review:
        return Review.from_dict(self.review)

    def reviewed(self, review: Review) -> None:
        """A step approved or a finding overridden; the last one makes the contract approved."""
        self.review = review.to_dict()
        self._close_if_complete(review)

    def rejected(self, review: Review, step: str, by: str, comment: str) -> None:
        self.review = review.to_dict()
        self.status = Status.DRAFT
        self.events.append(ContractRejected(**self._lifecycle_fields(), round=review.round, step=step,
                                            rejected_by=by, comment=comment))

    def _close_if_complete(self, review: Review) -> None:
        if review.outcome == "approved":
            self.status = Status.APPROVED
            self.events.append(ContractApproved(**self._lifecycle_fields(), round=review.round))

    def request_signatures(self) -> None:
        self.status = Status.OUT_FOR_SIGNATURE
        self.events.append(ContractSignatureRequested(**self._lifecycle_fields(), parties=list(states.PARTIES)))

    def seal(self, sha256: str, now: dt.datetime, terms: ContractTerms) -> None:
        """The last signature: the signed text's SHA-256 frozen, the terms announced."""
        self.status = Status.SIGNED
        self.signed_version, self.signed_sha256, self.signed_at = self.version, sha256, now
        self.events.append(ContractSigned(contract_id=self.id, org=self.org, version=self.version, terms=terms,
                                          document_sha256=sha256, signed_on=local_date(now)))

    def activate_by_hand(self, today: dt.date, signed_terms: ContractTerms) -> None:
        """Never before the effective date (the scheduler does it on that day)."""
        states.ensure_effective(self.effective_date, today)
        self.activate(today, signed_terms)

    def activate(self, today: dt.date, signed_terms: ContractTerms) -> None:
        """contract.activated with the terms as signed: what payments and SLA start from."""
        self.status, self.activated_on = Status.ACTIVE, today
        self.events.append(ContractActivated(contract_id=self.id, org=self.org, version=signed_terms.version,
                                             terms=signed_terms, activated_on=today))

    def complete(self, today: dt.date) -> None:
        self.status, self.ended_on = Status.COMPLETED, today
        self.events.append(ContractCompleted(**self._lifecycle_fields(), completed_on=today))

    def terminate(self, today: dt.date, reason: str) -> None:
        self.status, self.ended_on = Status.TERMINATED, today
        self.events.append(ContractTerminated(contract_id=self.id, org=self.org, terminated_on=today, reason=reason))

    # --- key dates ------------------------------------------------------------------------------

    def key_date_due(self, today: dt.date) -> str | None:
        return states.key_date_due(self.status, self.effective_date, self.end_date, self.renewal_notice_days,
                                   self.renewal_due_at is not None, today)

    def advance_key_date(self, due: str, today: dt.date, now: dt.datetime,
                         signed_terms: ContractTerms | None = None) -> None:
        """What the calendar does today: activate, announce the renewal, or expire."""
        if due == "activate":
            self.activate(today, signed_terms)
        elif due == "expire":
            self.status, self.ended_on = Status.EXPIRED, today
            self.events.append(ContractExpired(**self._lifecycle_fields(), expired_on=today))
        else:
            self.renewal_due_at = now
            self.events.append(ContractRenewalDue(**self._lifecycle_fields(), end_date=self.end_date,
                                                  notice_days=self.renewal_notice_days))
        self.changed(now)

    def _lifecycle_fields(self) -> dict:
        return {"contract_id": self.id, "org": self.org, "version": self.version, "number": self.number,
                "title": self.title}


def etag(version_number: int) -> str:
    """A contract's ETag: its current version number (strong)."""
    return f'"{version_number}"'


KEY_DATE_ACTIONS = {"activate": "contract.activated", "expire": "contract.expired",
                    "renewal_due": "contract.renewal_due"}


# --- a stored version, read --------------------------------------------------------------------------
# Versions are records with the columns of `contract_versions` (the repository's rows); these
# read them as the domain does.

def document_of(version: Any) -> ContractDocument:
    return DOCUMENT.validate_python(version.document)


def terms_of(contract: Any, version: Any) -> ContractTerms:
    """The full structured terms of a version, with the ids that make them this contract's."""
    return ContractTerms.model_validate({**version.terms, "contract_id": contract.id, "org": contract.org,
                                         "version": version.version})


def deviations_of(version: Any) -> list[dict]:
    """The version's non-standard positions as the policy and risk checks read them."""
    return [{"clause": d.get("clause") or d.get("clause_key"), "kind": d.get("kind"),
             "position": d.get("position") or d.get("kind")} for d in version.deviations or []]


def position_keys(version: Any) -> dict[str, str]:
    """clause key -> the position drafted ("standard", a fallback's key, "custom" or "omitted")."""
    def key(choice) -> str:
        if isinstance(choice, dict):
            return choice.get("key") if choice.get("kind") in ("standard", "fallback") and choice.get("key") \
                else choice.get("kind", "standard")
        return str(choice)
    return {clause: key(choice) for clause, choice in (version.positions or {}).items()}


def version_findings(contract: Any, checked: Any, rules: ApprovalPolicy) -> list[risk_checks.Finding]:
    """The risk checks of one version, with the organisation's limits."""
    return risk_checks.check(risk_checks.VersionFacts(
        kind=contract.kind, language=checked.language, variables=checked.variables,
        terms=terms_of(contract, checked), document=document_of(checked), deviations=deviations_of(checked)),
        rules.risk_limits)


def review_facts(contract: Any, current: Any, rules: ApprovalPolicy) -> ReviewFacts:
    """What the policy decides the review of this version from: kind, amount, deviations, blockers."""
    return ReviewFacts(kind=contract.kind, total_amount=contract.total_amount, deviations=deviations_of(current),
                       blocking_findings=blockers_of(version_findings(contract, current, rules)))


def amendment_blockers(contract: Any, drafted: Any, rules: ApprovalPolicy) -> list[dict]:
    """The high-severity findings of the version a change request would make (drafted, not stored)."""
    facts = risk_checks.VersionFacts.of_draft(drafted, contract_id=contract.id, org=contract.org,
                                              version=contract.version + 1)
    return blockers_of(risk_checks.check(facts, rules.risk_limits))


def blockers_of(findings: list[risk_checks.Finding]) -> list[dict]:
    """The findings that hold an approval until overridden, as a review stores them."""
    return [{"id": f.id, "code": f.code, "clause": f.clause, "message": f.message} for f in findings if f.blocking]

