"""Drafting: a template, a language, the variables and the chosen positions make a `Draft`.

In order: every variable is checked against the template's schema and the drafting rules, and
all the problems are reported together (`VariablesInvalid`); the derived values are computed
(each tranche's amount from its percentage, so that the amounts add up to the total to the fen);
the positions are read, non-standard ones recorded as deviations; the document is rendered; and
the structured terms (`ContractTerms` without its ids) are extracted from the same values, so
the document and the terms payments and SLA act on cannot disagree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Mapping

from services.contracts.domain.clauses import STANDARD, PositionChoice
from services.contracts.domain.document import ContractDocument
from services.contracts.domain.assembly import render_document
from services.contracts.domain.templates import ResolvedTemplate
from services.contracts.domain.variables import (LANGUAGES, Money, Problem, Record, VariablesInvalid, pointer,
                                                unwritable)
from shared.events.contracts import (DueTerm, LatePaymentPenalty, Milestone, Party, ServiceHours, SlaMetric,
                                     SlaTerms, Tranche, TrancheTrigger)
from shared.money import HUNDRED, allocate_percent



# --- money -------------------------------------------------------------------------------------

def price_tranches(total: Money, tranches: list[Any]) -> list[Tranche]:
    amounts = allocate_percent(total.amount, [t.percent for t in tranches])
    return [Tranche(key=t.key, label=t.label, percent=t.percent, amount=amount,
                    trigger=TrancheTrigger(**t.trigger.model_dump()), due=DueTerm(**t.due.model_dump()),
                    is_retention=t.is_retention)
            for t, amount in zip(tranches, amounts)]


# --- the draft ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Deviation:
    """A slot drafted other than in its standard position; it needs approval before signing."""
    clause_key: str
    kind: str                              # fallback | custom | omitted
    position: str | None = None            # the fallback chosen
    text: Mapping[str, str] | None = None  # the custom wording


@dataclass(frozen=True)
class Draft:
    template_key: str
    template_version: str
    kind: str
    language: str
    document: ContractDocument
    variables: Mapping[str, Any]           # parsed and derived values the document was rendered from
    positions: Mapping[str, PositionChoice]
    clause_versions: Mapping[str, str]    # clause key -> the version each article was rendered from
    deviations: tuple[Deviation, ...]
    terms: Mapping[str, Any]               # ContractTerms fields but contract_id, org and version

    # The draft reads like its document.
    @property
    def title(self) -> str:
        return self.document.title

    @property
    def number(self) -> str:
        return self.document.number

    @property
    def version(self) -> int:
        return self.document.version

    @property
    def preamble(self):
        return self.document.preamble

    @property
    def articles(self):
        return self.document.articles

    @property
    def signature_blocks(self):
        return self.document.signature_blocks

    @property
    def closing(self):
        return self.document.closing


def draft(template: ResolvedTemplate, language: str, variables: Mapping[str, Any],
          positions: Mapping[str, Any] | None = None, *, version: int = 1) -> Draft:
    problems: list[Problem] = []
    if language not in LANGUAGES:
        problems.append(Problem("/language", f"must be one of {', '.join(LANGUAGES)}"))
    values, schema_problems = template.schema.validate(variables)
    problems += schema_problems + drafting_rules(values)
    choices, position_problems = read_positions(template, positions or {}, language)
    problems += position_problems
    if problems:
        raise VariablesInvalid(problems)
    values = derive(template, language, values)
    document = render_document(template, language, values, choices, version=version)
    rendered = {a.clause_key for a in document.articles}
    return Draft(
        template_key=template.key, template_version=str(template.version), kind=template.kind, language=language,
        document=document, variables=MappingProxyType(values), positions=MappingProxyType(choices),
        clause_versions=MappingProxyType({a.clause_key: str(a.clause_version.version)
                                          for a in template.articles if a.clause_key in rendered}),
        deviations=tuple(_deviation(key, choice) for key, choice in choices.items() if choice.is_deviation),
        terms=MappingProxyType(extract_terms(template, language, values, choices)))


def _deviation(clause_key: str, choice: PositionChoice) -> Deviation:
    return Deviation(clause_key, choice.kind, choice.key if choice.kind == "fallback" else None,
                     choice.text if choice.kind == "custom" else None)


# --- rules across variables --------------------------------------------------------------------

def drafting_rules(values: Mapping[str, Any]) -> list[Problem]:
    """The rules no single variable's type can state. Each rule runs on whatever parsed, so a
    draft with a bad date still hears that its percentages do not add up."""
    problems = _tranche_rules(values) + _milestone_rules(values) + _number_rules(values)
    start, end = values.get("effective_date"), values.get("end_date")
    if start and end and end <= start:
        problems.append(Problem(pointer("variables", "end_date"), "must be after the effective date"))
    resolution = values.get("dispute_resolution")
    if resolution == "arbitration" and not values.get("arbitration_body"):
        problems.append(Problem(pointer("variables", "arbitration_body"),
                                "required when disputes go to arbitration: name the arbitration commission"))
    if resolution == "court" and not values.get("court_location"):
        problems.append(Problem(pointer("variables", "court_location"), "required when disputes go to court"))
    total, monthly = values.get("total_price"), values.get("monthly_fee")
    if total and monthly and total.currency != monthly.currency:
        problems.append(Problem(pointer("variables", "monthly_fee", "currency"),
                                f"must be the contract currency, {total.currency}"))
    metrics = values.get("sla_metrics") or ()
    problems += _repeats("sla_metrics", [m.key for m in metrics])
    return problems


MAX_NUMBER_CHARS = 100


def _number_rules(values: Mapping[str, Any]) -> list[Problem]:
    """The number names the contract in file names, headers and searches: one line, and short."""
    number = values.get("contract_number")
    if not isinstance(number, str):
        return []
    if re.search(r"[\t\n\r\x85\u2028\u2029]", number):
        return [Problem(pointer("variables", "contract_number"), "must be one line, without tabs")]
    if len(number) > MAX_NUMBER_CHARS:
        return [Problem(pointer("variables", "contract_number"), f"must be at most {MAX_NUMBER_CHARS} characters")]
    return []


def _tranche_rules(values: Mapping[str, Any]) -> list[Problem]:
    tranches = values.get("tranches")
    if tranches is None:
        return []
    problems = []
    total_percent = sum((t.percent for t in tranches), Decimal(0))
    if total_percent != HUNDRED:
        problems.append(Problem(pointer("variables", "tranches"),
                                f"the tranche percentages add up to {total_percent.normalize():f}, not 100"))
    keys = [t.key for t in tranches]
    problems += _repeats("tranches", keys)
    milestones = values.get("milestones")
    for i, t in enumerate(tranches):
        where = ("variables", "tranches", i, "trigger")
        if t.trigger.kind == "milestone" and milestones is not None and \
                t.trigger.milestone not in {m.key for m in milestones}:
            problems.append(Problem(pointer(*where, "milestone"), f"no milestone {t.trigger.milestone!r}"))
        if t.trigger.kind == "milestone" and "milestones" not in values:
            problems.append(Problem(pointer(*where, "milestone"), "a milestone trigger needs the milestones list"))
        if t.trigger.kind == "after_tranche":
            if t.trigger.tranche not in keys or t.trigger.tranche == t.key:
                problems.append(Problem(pointer(*where, "tranche"), f"no other tranche {t.trigger.tranche!r}"))
            if t.trigger.days is None and values.get("warranty_months") is None:
                problems.append(Problem(pointer(*where, "days"),
                                        "give the days, or the warranty_months the tranche waits for"))
    if not problems and _has_cycle(tranches):
        problems.append(Problem(pointer("variables", "tranches"), "after_tranche triggers wait on each other in a circle"))
    return problems


def _has_cycle(tranches) -> bool:
    after = {t.key: t.trigger.tranche for t in tranches if t.trigger.kind == "after_tranche"}
    for start in after:
        seen, key = set(), start
        while key in after:
            if key in seen:
                return True
            seen.add(key)
            key = after[key]
    return False


def _milestone_rules(values: Mapping[str, Any]) -> list[Problem]:
    return _repeats("milestones", [m.key for m in values.get("milestones") or ()])


def _repeats(name: str, keys: list[str]) -> list[Problem]:
    return [Problem(pointer("variables", name, i, "key"), f"key {key!r} is used twice")
            for i, key in enumerate(keys) if key in keys[:i]]


# --- positions ---------------------------------------------------------------------------------

def read_positions(template: ResolvedTemplate, positions: Any, language: str
                   ) -> tuple[dict[str, PositionChoice], list[Problem]]:
    """`{"confidentiality": "one_way"}`, `{"x": {"custom": {"zh-CN": ..., "en": ...}}}`,
    `{"x": {"omit": true}}` (an optional slot only). The standard position needs no entry."""
    if not isinstance(positions, Mapping):
        return {}, [Problem("/positions", "must be an object mapping clause keys to positions")]
    choices, problems = {}, []
    for clause_key, wanted in positions.items():
        where = pointer("positions", clause_key)
        try:
            article = template.article(clause_key)
        except Exception:
            problems.append(Problem(where, f"template {template.key} has no article {clause_key!r}"))
            continue
        choice, problem = _choice(article, wanted, language)
        if problem:
            problems.append(Problem(where, problem))
        elif choice is not None:
            choices[clause_key] = choice
    return choices, problems


def _choice(article, wanted: Any, language: str) -> tuple[PositionChoice | None, str | None]:
    available = article.clause_version.position_keys
    if isinstance(wanted, str):
        if wanted not in available:
            return None, f"no position {wanted!r}; choose one of {', '.join(available)}"
        return PositionChoice("standard" if wanted == STANDARD else "fallback", wanted), None
    if isinstance(wanted, Mapping) and set(wanted) == {"custom"}:
        text = wanted["custom"]
        if not isinstance(text, Mapping) or not str(text.get(language) or "").strip():
            return None, f"custom wording needs the text in {language}"
        problem = next(filter(None, (unwritable(str(v)) for v in text.values())), None)
        if problem:
            return None, f"custom wording {problem}"
        return PositionChoice("custom", text=MappingProxyType({k: str(v) for k, v in text.items()})), None
    if isinstance(wanted, Mapping) and set(wanted) == {"omit"}:
        if not wanted["omit"]:
            return None, None
        if article.slot.required:
            return None, "this article is required and cannot be left out"
        return PositionChoice("omitted"), None
    return None, "give a position key, {custom: {language: text}} or {omit: true}"


# --- derived values ----------------------------------------------------------------------------

def derive(template: ResolvedTemplate, language: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """What clause bodies read besides the variables: priced tranches (amount as Money) and the
    contract's kind and title."""
    derived = dict(values, contract_kind=template.kind, contract_title=template.title[language])
    if "tranches" in values:
        total = values["total_price"]
        derived["tranches"] = tuple(
            Record(key=t.key, label=t.label, percent=t.percent, amount=Money(t.amount, total.currency),
                   trigger=t.trigger, due=t.due, is_retention=t.is_retention)
            for t in price_tranches(total, list(values["tranches"])))
    return derived


# --- structured terms --------------------------------------------------------------------------

_WEEKDAYS = {"working_days": range(1, 6), "monday_to_saturday": range(1, 7), "every_day": range(1, 8)}


def extract_terms(template: ResolvedTemplate, language: str, values: Mapping[str, Any],
                  choices: Mapping[str, PositionChoice] | None = None) -> dict[str, Any]:
    """`ContractTerms` fields from the values a draft was rendered from (after `derive`); the
    caller adds contract_id, org and version. A left-out late-payment article promises no fee."""
    choices = choices or {}
    total: Money = values["total_price"]
    terms: dict[str, Any] = {
        "number": values["contract_number"], "kind": template.kind, "language": language,
        "title": template.title[language],
        "parties": [Party(role=role, **vars_of(values[role])) for role in ("client", "vendor")],
        "currency": total.currency, "total_amount": total.amount,
        "effective_date": values["effective_date"], "end_date": values["end_date"],
        "tranches": [_tranche_terms(t) for t in values.get("tranches", ())],
        "milestones": [Milestone(key=m.key, label=m.label, due_date=m.due_date) for m in values.get("milestones", ())],
        "warranty_months": values.get("warranty_months"),
    }
    if "monthly_fee" in values:
        terms["monthly_fee"] = values["monthly_fee"].amount
    late = choices.get("late_payment")
    if "late_payment_daily_rate" in values and not (late and late.kind == "omitted"):
        cap = values.get("late_payment_cap")
        terms["late_payment"] = LatePaymentPenalty(daily_rate=values["late_payment_daily_rate"] / HUNDRED,
                                                   cap_share=None if cap is None else cap / HUNDRED)
    if "change_response" in values:
        terms["change_response"] = DueTerm(days=values["change_response"].value, unit=values["change_response"].unit)
    if "renewal_notice_days" in values:
        terms["renewal_notice_days"] = values["renewal_notice_days"]
    if values.get("sla_metrics"):
        cap = values.get("credit_cap")
        terms["sla"] = SlaTerms(service_hours=service_hours(values),
                                metrics=[SlaMetric(**m.model_dump()) for m in values["sla_metrics"]],
                                credit_cap_share=None if cap is None else cap / HUNDRED)
    return terms


def vars_of(party: Any) -> dict[str, Any]:
    return {k: getattr(party, k) for k in ("name", "address", "representative", "contact", "credit_code")}


def _tranche_terms(t: Record) -> Tranche:
    return Tranche(key=t.key, label=t.label, percent=t.percent, amount=t.amount.amount,
                   trigger=TrancheTrigger(**t.trigger.model_dump()), due=DueTerm(**t.due.model_dump()),
                   is_retention=t.is_retention)


def service_hours(values: Mapping[str, Any]) -> ServiceHours:
    """The service hours variables as `ServiceHours` (the mapping sla.service_hours documents)."""
    kind = values.get("service_hours", "business_9_18")
    if kind == "24x7":
        return ServiceHours(hours={d: [("00:00", "24:00")] for d in range(1, 8)}, country="")
    if kind == "custom":
        days = values.get("custom_service_days", "working_days")
        window = (values.get("custom_open_time", "09:00"), values.get("custom_close_time", "18:00"))
        return ServiceHours(hours={d: [window] for d in _WEEKDAYS[days]}, country="" if days == "every_day" else "CN")
    return ServiceHours(hours={d: [("09:00", "18:00")] for d in range(1, 6)})
