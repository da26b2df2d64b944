"""Building a schedule's tranches and milestones from the contract's terms (as signed or amended)."""
from __future__ import annotations

from decimal import Decimal
from typing import Sequence

from services.payments.domain.due_dates import DueTerm
from services.payments.domain.milestones import Milestone
from services.payments.domain.tranches import PaymentTranche, Trigger
from shared.errors import Invalid
from shared.events.contracts import ContractTerms, Tranche as TrancheTerms
from shared.ids import new_id
from shared.money import HUNDRED, ZERO, allocate, to_fen


def tranche_amounts(specs: Sequence[TrancheTerms], total: Decimal, whole_contract: bool) -> list[Decimal]:
    """The tranches' amounts, adding up to `total` to the fen.

    The amounts written in the contract are used when they add up exactly (the signed document
    is what binds). Otherwise the total is split by the percentages, to the fen, with the
    largest-remainder method (`shared.money.allocate`). For a whole contract the percentages must add
    up to 100; for the part of an amended contract still to schedule, they are the weights.
    """
    if not specs:
        if total != 0:
            raise Invalid(f"The contract has a total of {total} but no tranches.")
        return []
    written = [to_fen(s.amount) for s in specs]
    if sum(written, ZERO) == total and all(a >= 0 for a in written) and all(s.amount == a for s, a in
                                                                              zip(specs, written)):
        return written
    percents = [Decimal(s.percent) for s in specs]
    if whole_contract and sum(percents, Decimal(0)) not in (HUNDRED, Decimal(1)):
        raise Invalid(f"The tranches' percentages add up to {sum(percents)}, not 100, and their amounts "
                      f"add up to {sum(written)}, not {total}.")
    try:
        return allocate(total, percents)
    except ValueError as exc:
        raise Invalid(f"The tranches cannot share {total}: {exc}.") from None


def tranche_from_terms(spec: TrancheTerms, amount: Decimal, position: int, terms: ContractTerms) -> PaymentTranche:
    trigger = spec.trigger
    months = terms.warranty_months if trigger.kind == "after_tranche" and trigger.days is None else None
    if trigger.kind == "after_tranche" and trigger.days is None and months is None:
        raise Invalid(f"Tranche {spec.key!r} follows {trigger.tranche!r} but says neither after how many days "
                      "nor the warranty months.")
    if trigger.kind == "fixed_date" and trigger.date is None:
        raise Invalid(f"Tranche {spec.key!r} is due on a fixed date but has none.")
    if trigger.kind == "after_tranche" and not trigger.tranche:
        raise Invalid(f"Tranche {spec.key!r} follows another tranche but does not say which.")
    if trigger.kind == "milestone" and not trigger.milestone:
        raise Invalid(f"Tranche {spec.key!r} waits on a milestone but does not say which.")
    return PaymentTranche(
        id=new_id(), key=spec.key, label=spec.label, position=position, percent=Decimal(spec.percent),
        amount=amount, trigger=Trigger(trigger.kind, trigger.milestone, trigger.date, trigger.tranche, trigger.days,
                                       months),
        due_term=DueTerm(spec.due.days, spec.due.unit), is_retention=spec.is_retention, version=terms.version)


def same_obligation(current: PaymentTranche, planned: PaymentTranche) -> bool:
    return (current.amount, current.trigger, current.due_term, current.is_retention) == (
        planned.amount, planned.trigger, planned.due_term, planned.is_retention)


def milestones_from_terms(terms: ContractTerms) -> list[Milestone]:
    """The contract's milestones; one a tranche waits on but the contract forgot to list is added."""
    milestones = [Milestone(new_id(), m.key, m.label, i, m.due_date) for i, m in enumerate(terms.milestones)]
    known = {m.key for m in milestones}
    for spec in terms.tranches:
        key = spec.trigger.milestone
        if spec.trigger.kind == "milestone" and key and key not in known:
            milestones.append(Milestone(new_id(), key, key, len(milestones)))
            known.add(key)
    return milestones
