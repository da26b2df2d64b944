"""Risk checks on one contract version: what a reviewer should look at before approving it.

Each finding has a severity, the clause it concerns, and a stable id (code:clause) by which an
approver overrides it. High severity blocks approval until overridden with a reason:
a required clause missing, wording that makes outsourcing work like labour dispatch (劳务派遣, which
劳务派遣暂行规定 art. 27 reclassifies: one finding per family of signs in `dispatch_line`), and
dispatched workers above the legal share of the workforce (art. 4: 10 %).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Iterable, Iterator, Literal

from services.contracts.domain.approvals import RiskLimits
from services.contracts.domain.dispatch_line import FAMILIES, dispatch_matches, dispatch_phrases  # noqa: F401
from services.contracts.domain.document import ContractDocument, Paragraph, Table
from shared.events.contracts import ContractTerms

if TYPE_CHECKING:
    from services.contracts.domain.drafting import Draft

Severity = Literal["high", "medium", "low"]
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    clause: str | None
    message: str
    messages: dict[str, str] | None = field(default=None, compare=False)   # by language, where written in both

    @property
    def id(self) -> str:
        return f"{self.code}:{self.clause or '-'}"

    @property
    def blocking(self) -> bool:
        return self.severity == "high"

    def to_dict(self) -> dict:
        answer = {"id": self.id, **asdict(self), "blocking": self.blocking}
        if answer["messages"] is None:
            del answer["messages"]
        return answer


@dataclass(frozen=True)
class VersionFacts:
    """What the checks read from one version."""
    kind: str
    language: str
    variables: dict
    terms: ContractTerms
    document: ContractDocument
    deviations: list[dict]          # [{"clause", "position", "kind": "fallback" | "custom" | "omitted"}]

    @classmethod
    def of_draft(cls, draft: Draft, *, contract_id: str = "draft", org: str = "-", version: int = 1) -> VersionFacts:
        """The facts of a draft straight from the engine, before it is stored."""
        terms = ContractTerms.model_validate({**draft.terms, "contract_id": contract_id, "org": org,
                                              "version": version})
        deviations = [{"clause": d.clause_key, "kind": d.kind, "position": d.position} for d in draft.deviations]
        return cls(kind=draft.kind, language=draft.language, variables=dict(draft.variables), terms=terms,
                   document=draft.document, deviations=deviations)


# Clauses a contract of each kind must contain, whatever its template says. A requirement is a
# clause key, or a group named in CLAUSE_GROUPS that any one of its clauses meets.
_COMMON = ("parties", "scope", "price", "payment.tranches", "acceptance", "warranty", "change_control",
           "confidentiality", "subcontracting", "breach", "termination", "disputes", "signatures")
REQUIRED_CLAUSES: dict[str, tuple[str, ...]] = {
    "software_development": _COMMON + ("ip.ownership",),
    "call_centre": _COMMON + ("sla.service_levels", "sla.credits", "data_protection"),
    "it_operations": _COMMON + ("sla.service_levels", "sla.credits", "data_protection"),
    "labour_outsourcing": _COMMON + ("personnel.labour_outsourcing",),
}
SCOPE_CLAUSES = ("scope", "service_scope.call_centre", "service_scope.it_operations",
                 "service_scope.labour_outsourcing", "deliverables.software")
# The generic clause, or the one written for a kind: a project's milestone acceptance and warranty
# (acceptance, warranty) or a service's monthly confirmation and quality guarantee with its
# retention (acceptance.services, warranty.services).
CLAUSE_GROUPS: dict[str, tuple[str, ...]] = {
    "scope": SCOPE_CLAUSES,
    "acceptance": ("acceptance", "acceptance.services"),
    "warranty": ("warranty", "warranty.services"),
}


def clauses_meeting(requirement: str) -> tuple[str, ...]:
    """The clause keys any one of which meets a requirement of REQUIRED_CLAUSES."""
    return CLAUSE_GROUPS.get(requirement, (requirement,))


def check(facts: VersionFacts, limits: RiskLimits) -> list[Finding]:
    findings = [
        *_missing_clauses(facts),
        *_non_standard_positions(facts),
        *_dispatch_wording(facts),
        *_dispatched_share(facts, limits),
        *_retention(facts, limits),
        *_subcontracting(facts),
        *_credits(facts, limits),
        *_late_payment(facts, limits),
    ]
    order = {"high": 0, "medium": 1, "low": 2}
    return sorted(findings, key=lambda f: (order[f.severity], f.code, f.clause or ""))


# --- clauses --------------------------------------------------------------------------------------

def _missing_clauses(facts: VersionFacts) -> Iterator[Finding]:
    present = {a.clause_key for a in facts.document.articles}
    for requirement in REQUIRED_CLAUSES.get(facts.kind, _COMMON):
        meeting = clauses_meeting(requirement)
        if present.isdisjoint(meeting):
            either = f" (one of {', '.join(meeting)})" if len(meeting) > 1 else ""
            yield Finding("required_clause_missing", "high", requirement,
                          f"A {facts.kind} contract needs a '{requirement}' clause{either}; this version has none.")


def _non_standard_positions(facts: VersionFacts) -> Iterator[Finding]:
    for d in facts.deviations:
        if d.get("kind") == "custom":
            yield Finding("custom_position", "medium", d["clause"],
                          "Custom text replaces the library wording of this clause; it needs an approver.")
        elif d.get("kind") == "omitted":
            yield Finding("clause_omitted", "medium", d["clause"],
                          "This optional article is left out of the contract.")
        else:
            yield Finding("fallback_position", "low", d["clause"],
                          f"The fallback position '{d.get('position')}' is used instead of the standard one.")


# --- labour dispatch ------------------------------------------------------------------------------

def _dispatch_wording(facts: VersionFacts) -> Iterator[Finding]:
    """One finding per family of dispatch signs (dispatch_line.FAMILIES) in each article."""
    for article in facts.document.articles:
        by_family: dict[str, list[str]] = {}
        for text in _texts(article.blocks):
            for match in dispatch_matches(text, facts.language):
                by_family.setdefault(match.family, []).append(match.phrase)
        for family in FAMILIES:
            if family.key in by_family:
                quoted = "; ".join(dict.fromkeys(by_family[family.key]))
                yield Finding(f"dispatch_{family.key}", family.severity, article.clause_key,
                              f"{family.message['en']} ({quoted})",
                              messages={lang: f"{text}（{quoted}）" if lang == "zh-CN" else f"{text} ({quoted})"
                                        for lang, text in family.message.items()})


def _dispatched_share(facts: VersionFacts, limits: RiskLimits) -> Iterator[Finding]:
    dispatched = _number(facts.variables.get("dispatched_workers"))
    workforce = _number(facts.variables.get("total_workforce"))
    if dispatched is None or not workforce:
        return
    share = dispatched * HUNDRED / workforce
    if share > limits.dispatched_share_max_percent:
        yield Finding("dispatched_share_above_limit", "high", "personnel.labour_outsourcing",
                      f"Dispatched workers are {share.quantize(Decimal('0.1'))} % of the workforce "
                      f"({dispatched} of {workforce}); the limit is {limits.dispatched_share_max_percent} %.")


# --- money ----------------------------------------------------------------------------------------

def _retention(facts: VersionFacts, limits: RiskLimits) -> Iterator[Finding]:
    retained = sum((percent_of(t.percent) for t in facts.terms.tranches if t.is_retention), Decimal(0))
    if retained > limits.retention_max_percent:
        yield Finding("retention_above_cap", "medium", "payment.tranches",
                      f"{retained} % of the price is retained; the cap is {limits.retention_max_percent} %.")


def _subcontracting(facts: VersionFacts) -> Iterator[Finding]:
    if facts.variables.get("subcontracting_allowed") == "free":
        yield Finding("subcontracting_without_consent", "medium", "subcontracting",
                      "The vendor may subcontract without the client's written consent.")


def _credits(facts: VersionFacts, limits: RiskLimits) -> Iterator[Finding]:
    sla = facts.terms.sla
    if sla is None or not any(m.credit for m in sla.metrics):
        return
    clause = "sla.credits"
    if sla.credit_cap_share is None:
        yield Finding("service_credits_uncapped", "medium", clause,
                      "Service credits have no monthly cap.")
    elif sla.credit_cap_share * HUNDRED > limits.credit_cap_max_percent:
        yield Finding("service_credit_cap_above_limit", "medium", clause,
                      f"Service credits may reach {sla.credit_cap_share * HUNDRED} % of the monthly fee; "
                      f"the limit is {limits.credit_cap_max_percent} %.")


def _late_payment(facts: VersionFacts, limits: RiskLimits) -> Iterator[Finding]:
    late = facts.terms.late_payment
    if late is None:
        return
    daily = late.daily_rate * HUNDRED
    if daily > limits.late_payment_daily_rate_max_percent:
        yield Finding("penalty_rate_above_limit", "medium", "late_payment",
                      f"Late payment interest of {daily.normalize()} % a day is above the limit of "
                      f"{limits.late_payment_daily_rate_max_percent} %.")
    if late.cap_share is None:
        yield Finding("penalty_uncapped", "low", "late_payment", "Late payment interest has no cap.")
    elif late.cap_share * HUNDRED > limits.late_payment_cap_max_percent:
        yield Finding("penalty_cap_above_limit", "medium", "late_payment",
                      f"Late payment interest may reach {(late.cap_share * HUNDRED).normalize()} % of the contract "
                      f"value; the limit is {limits.late_payment_cap_max_percent} %.")


# --- helpers --------------------------------------------------------------------------------------

def percent_of(value: Decimal) -> Decimal:
    """A tranche's share in percent, whether the terms carry 30 or 0.30 for 30 %."""
    return value * HUNDRED if value <= 1 and value != 0 and _is_fraction_scale() else value


def _is_fraction_scale() -> bool:
    return TRANCHE_PERCENT_IS_FRACTION


# Whether ContractTerms.Tranche.percent is a fraction (0.30) or percent (30); set from the engine.
TRANCHE_PERCENT_IS_FRACTION = False


def _number(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _texts(blocks: Iterable) -> Iterator[str]:
    for block in blocks:
        if isinstance(block, Paragraph):
            yield block.text
        elif isinstance(block, Table):
            for row in (block.header, *block.rows):
                yield from row
