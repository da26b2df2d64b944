"""Separation of duties in an approval round (issues 16 and 17), shared by the review of a contract
version and the approval chain of a change request.

- Nobody decides on what they wrote, submitted or raised (four eyes).
- Each person holds one seat in a round: whoever decided one step decides no other of the same
  round (overriding the risk findings counts as one seat of its own).
- A step is decided by its roles. `admin` administers (policies, webhooks) but is no universal
  approver: it decides a step only when the step (or the policy's override roles) names it.
  `shared.auth.Principal.has` still lets admin through every route; the decision is checked here.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from shared.errors import Forbidden, field_error

RISK_OVERRIDE = "risk_override"


def holds(roles: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether one of `roles` is one the step names (admin only if it is named)."""
    return not set(roles).isdisjoint(wanted)


def ensure_holds(roles: frozenset[str], wanted: list[str], what: str, **extra) -> None:
    if holds(roles, wanted):
        return
    admin = " An administrator decides it only with one of these roles." if "admin" in roles else ""
    raise Forbidden(f"{what} is decided by: {', '.join(wanted)}.{admin}", **extra)


def ensure_not_involved(actor: str, involved: Mapping[str, str], what: str) -> None:
    """`involved` maps each person who may not decide to why (wrote a version, submitted it, raised it)."""
    why = involved.get(actor)
    if why is not None:
        raise Forbidden(f"Four eyes: whoever {why} cannot {what}.")


def ensure_one_seat(actor: str, seats: Mapping[str, str], seat: str) -> None:
    """`seats` maps each person who already decided in this round to what they decided."""
    held = seats.get(actor)
    if held is not None and held != seat:
        raise Forbidden(f"Separation of duties: {actor} already decided '{held}' in this round and decides "
                        f"nothing else in it; another person decides this.", decided_step=held)


def ensure_reason(reason: str | None, problems: list[dict], pointer: str = "/reason") -> None:
    """A reason on the record says something: blank or whitespace only is no reason."""
    if not (reason or "").strip():
        problems.append(field_error(pointer, "give a reason (blank or whitespace only is not one)"))

