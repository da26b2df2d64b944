"""The change-request aggregate (变更申请): its state machine and the events it records.

A `ChangeRequest` is raised in draft against a contract's current version, submitted (the
change-control clock starts), assessed (the approval chain follows from kind and cost), decided
step by step, withdrawn, or implemented as the contract's amended version. Each command checks
the state allows it (409 naming what is allowed), changes the request and records its event in
`self.events`; the unit of work writes them to the outbox at commit.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from services.contracts.domain.change_approval import Assessment, ChangeReview
from services.contracts.domain.change_requests import ChangeStatus, ProposedChange, TRANSITIONS, ensure_allowed
from services.contracts.domain.duties import ensure_holds
from shared.errors import Forbidden
from services.contracts.domain.stored import StoredAggregate
from shared.events.base import EventPayload
from shared.events.change_requests import (ChangeRequestApproved, ChangeRequestAssessed, ChangeRequestImplemented,
                                           ChangeRequestOverdue, ChangeRequestRejected, ChangeRequestSubmitted,
                                           ChangeRequestWithdrawn)


# Who may turn a submitted request away before it is assessed (admin only with one of them).
SCREENING_ROLES = ("pm", "legal", "finance", "approver")


@dataclass
class ChangeRequest(StoredAggregate):
    id: str
    org: str
    contract_id: str
    number: int
    title: str
    reason: str
    status: str
    base_version: int
    changes: dict                       # {"kinds", "description", "proposed": ProposedChange as JSON}
    revision: int
    raised_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    assessment: dict | None = None
    review: dict | None = None
    submitted_at: dt.datetime | None = None
    assessment_due_at: dt.datetime | None = None
    overdue_at: dt.datetime | None = None
    implemented_version: int | None = None
    events: list[EventPayload] = field(default_factory=list, repr=False, compare=False)


    @classmethod
    def raised(cls, *, id: str, org: str, contract_id: str, number: int, title: str, description: str, reason: str,
               kinds: list[str], change: ProposedChange, base_version: int, by: str,
               now: dt.datetime) -> "ChangeRequest":
        """A draft request (no event: nobody outside hears of a draft)."""
        return cls(id=id, org=org, contract_id=contract_id, number=number, title=title, reason=reason,
                   status=ChangeStatus.DRAFT, base_version=base_version,
                   changes={"kinds": kinds, "description": description,
                            "proposed": change.model_dump(mode="json", exclude_defaults=True)},
                   revision=1, raised_by=by, created_at=now, updated_at=now)

    @property
    def label(self) -> str:
        return f"CR-{self.number}"

    @property
    def kinds(self) -> list[str]:
        return self.changes["kinds"]

    @property
    def proposed(self) -> ProposedChange:
        return ProposedChange.model_validate(self.changes["proposed"])

    # --- the state machine ----------------------------------------------------------------------

    def ensure_allowed(self, command: str) -> None:
        ensure_allowed(command, self.status)

    def moved(self, command: str, now: dt.datetime, status: ChangeStatus | None = None) -> None:
        """The command's target state (or the one the command decided), a new revision."""
        self.status = status or TRANSITIONS[command][1]
        self.revision += 1
        self.updated_at = now

    def submit(self, by: str, now: dt.datetime, due: dt.datetime) -> None:
        """The clock of the change-control clause starts. Only the raiser submits: the submitter, like
        the raiser, decides nothing on the request, and the request keeps one name for both."""
        self.ensure_allowed("submit")
        if by != self.raised_by:
            raise Forbidden("Only whoever raised a change request submits it.")
        self.submitted_at, self.assessment_due_at = now, due
        self.events.append(ChangeRequestSubmitted(**self._fields(), assessment_due_at=due))
        self.moved("submit", now)

    def assess(self, assessment: Assessment, review: ChangeReview, by: str, now: dt.datetime,
               current_version: int) -> None:
        """The impact recorded, with the approval chain the policy gives its kinds and price change. A
        request whose base was amended meanwhile is assessed against the contract as it is now."""
        self.ensure_allowed("assess")
        self.ensure_may_assess(by)
        self.base_version = current_version
        self.assessment = {**assessment.model_dump(mode="json"), "by": by, "at": now.isoformat()}
        self.review = review.to_dict()
        self.events.append(ChangeRequestAssessed(**self._fields(), cost=assessment.cost,
                                                 schedule_days=assessment.schedule_days, risk=assessment.risk,
                                                 approval_steps=[s["key"] for s in review.steps]))
        self.moved("assess", now)

    def ensure_may_assess(self, by: str) -> None:
        if by == self.raised_by:
            raise Forbidden("Four eyes: whoever raised a change request cannot assess it.")

    def approve(self, by: str, roles: frozenset[str], comment: str | None, now: dt.datetime) -> None:
        """One step; the last one (with every blocking finding overridden) makes the request approved."""
        self.ensure_allowed("approve")
        review = ChangeReview.from_dict(self.review)
        self._decided("approve", review, review.approve(by, roles, self.raised_by, now, comment), now)

    def override(self, by: str, roles: frozenset[str], finding: str, reason: str, now: dt.datetime) -> None:
        """A blocking finding of the amended contract let pass with a reason, as for a draft."""
        self.ensure_allowed("override")
        review = ChangeReview.from_dict(self.review)
        self._decided("override", review, review.override(by, roles, self.raised_by, now, finding, reason), now)

    def _decided(self, command: str, review: ChangeReview, complete: bool, now: dt.datetime) -> None:
        self.review = review.to_dict()
        if complete:
            self.events.append(ChangeRequestApproved(**self._fields()))
        self.moved(command, now, ChangeStatus.APPROVED if complete else ChangeStatus.ASSESSED)

    def reject(self, by: str, roles: frozenset[str], comment: str, now: dt.datetime) -> None:
        """An assessed request is rejected at its next step; a submitted one at screening."""
        self.ensure_allowed("reject")
        review = ChangeReview.from_dict(self.review)
        if self.status == ChangeStatus.ASSESSED:
            review.reject(by, roles, self.raised_by, now, comment)
        elif by == self.raised_by:
            raise Forbidden("Four eyes: whoever raised a change request cannot decide on it; withdraw it instead.")
        else:
            ensure_holds(roles, list(SCREENING_ROLES), "Screening a change request")
            review.decisions.append({"step": "screening", "decision": "rejected", "by": by,
                                     "at": now.isoformat(), "comment": comment})
        self.review = review.to_dict()
        self.events.append(ChangeRequestRejected(**self._fields(), rejected_by=by, comment=comment))
        self.moved("reject", now)

    def withdraw(self, by: str, roles: frozenset[str], now: dt.datetime) -> None:
        self.ensure_allowed("withdraw")
        if by != self.raised_by and not (roles & {"legal", "admin"}):
            raise Forbidden("Only whoever raised a change request (or legal) can withdraw it.")
        self.events.append(ChangeRequestWithdrawn(**self._fields()))
        self.moved("withdraw", now)

    def implemented(self, new_version: int, now: dt.datetime) -> None:
        self.ensure_allowed("implement")
        self.implemented_version = new_version
        self.events.append(ChangeRequestImplemented(**self._fields(), new_version=new_version))
        self.moved("implement", now)

    def overdue(self, now: dt.datetime) -> None:
        """Not assessed within the response time: announced once (the repository claims it)."""
        self.overdue_at = now
        self.events.append(ChangeRequestOverdue(**self._fields(), assessment_due_at=self.assessment_due_at))

    def _fields(self) -> dict:
        return {"contract_id": self.contract_id, "org": self.org, "change_request_id": self.id,
                "number": self.label, "title": self.title, "kinds": self.kinds, "base_version": self.base_version}

