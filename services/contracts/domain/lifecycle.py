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

from dataclasses import dataclass
from enum import StrEnum

from shared.errors import Conflict


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
    Command("override", (S.IN_REVIEW,), ("approver",)),
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
