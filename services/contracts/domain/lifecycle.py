"""The contract lifecycle: states, the commands that move a contract between them, and who may
give each command.

    draft ──submit──▶ in_review ──approve (last step)──▶ approved ──request-signature──▶ out_for_signature
      ▲                   │                                                                  │
      └──────reject───────┘                                                  sign (last party)
                                                                                              ▼
    completed ◀──complete── active ◀──activate (or its effective date)── signed
                              │  └──(day after its end date)──▶ expired
                              └──terminate──▶ terminated  (also from signed)

Approving and signing are recorded one step (one party) at a time: the contract changes state
only with the last one. `edit` (a new version) is allowed in draft only: after that the text is
fixed, and a signed contract changes only by amendment (a change request).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import Conflict, Forbidden


class Status(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    OUT_FOR_SIGNATURE = "out_for_signature"
    SIGNED = "signed"
    ACTIVE = "active"
    COMPLETED = "completed"
    TERMINATED = "terminated"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Command:
    name: str
    sources: tuple[Status, ...]
    roles: tuple[str, ...]        # roles that may give it (admin always may); () = the scheduler only


S = Status
COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("edit", (S.DRAFT,), ("legal",)),
    Command("submit", (S.DRAFT,), ("legal",)),
    Command("approve", (S.IN_REVIEW,), ("approver", "finance", "legal")),
    Command("override", (S.IN_REVIEW,), ("approver", "finance", "legal")),   # narrowed by the policy
    Command("reject", (S.IN_REVIEW,), ("approver", "finance", "legal")),
    Command("request-signature", (S.APPROVED,), ("legal",)),
    Command("sign", (S.OUT_FOR_SIGNATURE,), ("legal", "vendor")),
    Command("activate", (S.SIGNED,), ("legal",)),
    Command("complete", (S.ACTIVE,), ("legal",)),
    Command("terminate", (S.SIGNED, S.ACTIVE), ("legal",)),
    Command("expire", (S.ACTIVE,), ()),
    Command("amend", (S.SIGNED, S.ACTIVE), ()),   # by implementing a change request
)}

# Commands a person can give over HTTP, in the order a contract meets them.
HTTP_COMMANDS = ("submit", "approve", "reject", "request-signature", "sign", "activate", "complete", "terminate")

FINAL = frozenset({S.COMPLETED, S.TERMINATED, S.EXPIRED})
IN_FORCE = frozenset({S.SIGNED, S.ACTIVE})   # states in which the text is frozen and binding


def allowed_commands(status: Status) -> list[str]:
    """The commands a person may give in this state (for error messages and the contract view)."""
    return [name for name in HTTP_COMMANDS if status in COMMANDS[name].sources]


def ensure_allowed(command: str, status: Status) -> None:
    """Refuse a command the current state does not allow, naming the state and what is possible."""
    if Status(status) not in COMMANDS[command].sources:
        allowed = allowed_commands(Status(status))
        raise Conflict(f"A contract in state '{status}' cannot '{command}'; allowed now: "
                       f"{', '.join(allowed) if allowed else 'nothing (final state)'}.",
                       current_state=str(status), allowed_transitions=allowed)


# --- signatures -------------------------------------------------------------------------------------

PARTIES = ("client", "vendor")
# Legal records the client's signature (and a counterparty's wet-ink one it received); a vendor
# user signs for the vendor only.
SIGNING_ROLES = {"client": ("legal",), "vendor": ("legal", "vendor")}


def ensure_may_sign(party: str, roles: frozenset[str]) -> None:
    wanted = SIGNING_ROLES[party]
    if "admin" not in roles and not roles.intersection(wanted):
        raise Forbidden(f"The {party}'s signature is recorded by: {', '.join(wanted)}.")


def unsigned_parties(signed: set[str]) -> list[str]:
    return [p for p in PARTIES if p not in signed]


# --- key dates --------------------------------------------------------------------------------------

# A longer notice than a year is read as a year: the scheduler looks that far ahead, no further.
MAX_RENEWAL_NOTICE_DAYS = 366


def ensure_effective(effective_date: dt.date, today: dt.date) -> None:
    if effective_date > today:
        raise Conflict(f"The contract takes effect on {effective_date.isoformat()}; it activates then, not before.",
                       effective_date=effective_date.isoformat())


def renewal_notice_on(end_date: dt.date, notice_days: int) -> dt.date:
    """The day contract.renewal_due is announced: `notice_days` before the end date."""
    return end_date - dt.timedelta(days=max(0, min(notice_days, MAX_RENEWAL_NOTICE_DAYS)))


def key_date_due(status: str, effective_date: dt.date, end_date: dt.date, notice_days: int,
                 renewal_announced: bool, today: dt.date) -> str | None:
    """What the calendar does to a contract today, one thing at a time: activate, renewal_due or expire.

    A contract is in force through its end date and expires the day after. The renewal notice
    goes once, while the contract is signed or active and the end date has not passed.
    """
    if status == S.SIGNED and effective_date <= today:
        return "activate"
    if status in IN_FORCE and not renewal_announced and renewal_notice_on(end_date, notice_days) <= today <= end_date:
        return "renewal_due"
    if status == S.ACTIVE and end_date < today:
        return "expire"
    return None
