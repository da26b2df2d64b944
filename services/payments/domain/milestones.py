"""Milestones (里程碑) and their acceptance (验收).

The vendor's PM logs a milestone as reached, then submits it for acceptance with links to the
evidence (acceptance report, test report, delivery note). The client accepts it, which makes
the tranches it triggers payable, or rejects it with comments; a rejected milestone is fixed
and submitted again. Whoever submitted a milestone cannot also accept it (four eyes).

    open ──reach──▶ reached ──submit──▶ submitted ──accept──▶ accepted
                                          ▲   │
                                   submit │   └──reject──▶ rejected
                                          └────────────────────┘
    any state but accepted ──(amendment drops it / contract terminated)──▶ withdrawn
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from shared.errors import Conflict, Forbidden, Invalid, field_error

MilestoneStatus = Literal["open", "reached", "submitted", "accepted", "rejected", "withdrawn"]


@dataclass(frozen=True)
class MilestoneReview:
    """One step in a milestone's acceptance history."""
    action: Literal["reached", "submitted", "accepted", "rejected", "withdrawn"]
    by: str
    at: dt.datetime
    evidence: tuple[str, ...] = ()
    comment: str | None = None


@dataclass
class Milestone:
    id: str
    key: str
    label: str
    position: int
    planned_on: dt.date | None = None        # the contract's target date for it
    status: MilestoneStatus = "open"
    reached_on: dt.date | None = None
    evidence: tuple[str, ...] = ()
    submitted_by: str | None = None
    accepted_on: dt.date | None = None
    decided_by: str | None = None
    comment: str | None = None
    history: list[MilestoneReview] = field(default_factory=list)

    def reach(self, by: str, at: dt.datetime, on: dt.date, note: str | None = None) -> None:
        self._expect("reached", "open")
        self.status, self.reached_on = "reached", on
        self.history.append(MilestoneReview("reached", by, at, comment=note))

    def submit(self, by: str, at: dt.datetime, evidence: tuple[str, ...], note: str | None = None) -> None:
        self._expect("submitted", "reached", "rejected")
        if not evidence:
            raise Invalid("A milestone is submitted with at least one evidence link.",
                          errors=[field_error("/evidence", "at least one link is required")])
        self.status, self.evidence, self.submitted_by = "submitted", tuple(evidence), by
        self.decided_by = self.comment = None
        self.history.append(MilestoneReview("submitted", by, at, evidence=tuple(evidence), comment=note))

    def accept(self, by: str, at: dt.datetime, on: dt.date, comment: str | None = None) -> None:
        self._expect("accepted", "submitted")
        self._not_by_submitter(by)
        self.status, self.accepted_on, self.decided_by, self.comment = "accepted", on, by, comment
        self.history.append(MilestoneReview("accepted", by, at, comment=comment))

    def reject(self, by: str, at: dt.datetime, comment: str) -> None:
        self._expect("rejected", "submitted")
        self._not_by_submitter(by)
        if not comment or not comment.strip():
            raise Invalid("A rejection says why.", errors=[field_error("/comment", "a comment is required")])
        self.status, self.decided_by, self.comment = "rejected", by, comment
        self.history.append(MilestoneReview("rejected", by, at, comment=comment))

    def withdraw(self, at: dt.datetime, reason: str) -> None:
        if self.status not in ("accepted", "withdrawn"):
            self.status = "withdrawn"
            self.history.append(MilestoneReview("withdrawn", "system", at, comment=reason))

    def _expect(self, action: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise Conflict(f"Milestone {self.key!r} is {self.status}; it cannot be {action} now.",
                           status_now=self.status)

    def _not_by_submitter(self, by: str) -> None:
        if by == self.submitted_by:
            raise Forbidden("Whoever submitted a milestone cannot also decide on its acceptance.")
