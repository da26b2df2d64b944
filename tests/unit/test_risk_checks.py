"""Risk checks: every finding of the issue's list fires on a draft crafted for it, and none fires on
the built-in samples."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from services.contracts.domain import drafting
from services.contracts.domain.approvals import RiskLimits
from services.contracts.adapters.library_files import load_library
from services.contracts.domain.risk_checks import VersionFacts, check, dispatch_phrases

TEMPLATES = ("software_development", "call_centre", "it_operations", "labour_outsourcing")
LANGUAGES = ("zh-CN", "en")
LIMITS = RiskLimits()


@pytest.fixture(scope="module")
def library():
    return load_library()


def _facts(library, key: str, language: str = "zh-CN", positions: dict | None = None, **changes) -> VersionFacts:
    variables = {**library.template(key).sample_variables_for(language), **changes}
    return VersionFacts.of_draft(drafting.draft(library.template(key), language, variables, positions or {}))


def _codes(facts: VersionFacts, limits: RiskLimits = LIMITS) -> dict[str, tuple[str, str | None]]:
    return {f.code: (f.severity, f.clause) for f in check(facts, limits)}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", TEMPLATES)
def test_the_samples_raise_no_finding(library, key, language):
    assert check(_facts(library, key, language), LIMITS) == []


def test_retention_above_the_cap(library):
    tranches = [dict(t) for t in library.template("software_development").sample_variables["tranches"]]
    tranches[2]["percent"], tranches[3]["percent"] = "25", "15"
    facts = _facts(library, "software_development", tranches=tranches)
    assert _codes(facts) == {"retention_above_cap": ("medium", "payment.tranches")}
    assert _codes(facts, RiskLimits(retention_max_percent=Decimal(15))) == {}


def test_a_required_clause_missing(library):
    facts = _facts(library, "software_development")
    without = replace(facts, document=replace(facts.document, articles=tuple(
        a for a in facts.document.articles if a.clause_key not in ("warranty", "deliverables.software"))))
    assert {(f.code, f.clause) for f in check(without, LIMITS)} == {("required_clause_missing", "warranty"),
                                                                    ("required_clause_missing", "scope")}
    assert all(f.blocking for f in check(without, LIMITS))


@pytest.mark.parametrize("key", ["call_centre", "it_operations", "labour_outsourcing"])
def test_a_service_contract_needs_its_confirmation_and_quality_guarantee(library, key):
    facts = _facts(library, key)
    without = replace(facts, document=replace(facts.document, articles=tuple(
        a for a in facts.document.articles if a.clause_key not in ("acceptance.services", "warranty.services"))))
    findings = check(without, LIMITS)
    assert {(f.code, f.clause, f.severity) for f in findings} == {("required_clause_missing", "acceptance", "high"),
                                                                  ("required_clause_missing", "warranty", "high")}
    assert all("acceptance.services" in f.message or "warranty.services" in f.message for f in findings)
    # the generic project articles meet the requirement as well: a kind needs one of them, not a given key
    generic = replace(facts, document=replace(facts.document, articles=tuple(
        replace(a, clause_key=a.clause_key.split(".")[0]) if a.clause_key.endswith(".services") else a
        for a in facts.document.articles)))
    assert check(generic, LIMITS) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_fallback_custom_and_omitted_positions(library, language):
    custom = {"zh-CN": "双方另行约定。", "en": "As the parties agree separately."}
    facts = _facts(library, "software_development", language,
                   {"ip.ownership": "vendor_background_licence", "confidentiality": {"custom": custom},
                    "late_payment": {"omit": True}})
    findings = {(f.code, f.clause, f.severity) for f in check(facts, LIMITS)}
    assert findings == {("fallback_position", "ip.ownership", "low"),
                        ("custom_position", "confidentiality", "medium"),
                        ("clause_omitted", "late_payment", "medium")}


DISPATCH = {"zh-CN": "乙方人员由甲方直接管理，并服从甲方的考勤安排。",
            "en": "The Vendor's workers shall work under the direction of the Client and follow its roster."}


@pytest.mark.parametrize("language", LANGUAGES)
def test_dispatch_wording_in_labour_outsourcing(library, language):
    facts = _facts(library, "labour_outsourcing", language,
                   {"personnel.labour_outsourcing": {"custom": {language: DISPATCH[language]}}})
    findings = {f.code: f for f in check(facts, LIMITS)}
    # one finding per family of dispatch signs (dispatch_line): management, and in zh-CN the attendance too
    expected = {"dispatch_management"} | ({"dispatch_attendance"} if language == "zh-CN" else set())
    assert set(findings) == expected | {"custom_position"}
    for code in expected:
        assert findings[code].clause == "personnel.labour_outsourcing" and findings[code].blocking
        assert set(findings[code].to_dict()["messages"]) == {"zh-CN", "en"}


@pytest.mark.parametrize(("text", "language"), [
    ("甲方不对乙方人员进行管理、指挥或考核。", "zh-CN"),
    ("乙方人员不接受甲方的管理。", "zh-CN"),
    ("The Client does not manage, direct or appraise the Vendor's Workers.", "en"),
])
def test_negated_wording_is_not_dispatch(text, language):
    assert dispatch_phrases(text, language) == []


def test_dispatched_workers_above_ten_percent(library):
    facts = _facts(library, "labour_outsourcing", dispatched_workers=190, total_workforce=1860)
    assert _codes(facts) == {"dispatched_share_above_limit": ("high", "personnel.labour_outsourcing")}
    assert _codes(_facts(library, "labour_outsourcing", dispatched_workers=186, total_workforce=1860)) == {}


def test_subcontracting_without_consent(library):
    facts = _facts(library, "it_operations", subcontracting_allowed="free")
    assert _codes(facts) == {"subcontracting_without_consent": ("medium", "subcontracting")}
    for allowed in ("never", "with_written_consent"):
        assert _codes(_facts(library, "it_operations", subcontracting_allowed=allowed)) == {}


def test_service_credits_without_a_cap_and_above_the_limit(library):
    facts = _facts(library, "call_centre")
    uncapped = replace(facts, terms=facts.terms.model_copy(
        update={"sla": facts.terms.sla.model_copy(update={"credit_cap_share": None})}))
    assert _codes(uncapped) == {"service_credits_uncapped": ("medium", "sla.credits")}
    assert _codes(_facts(library, "call_centre", credit_cap="40")) == {
        "service_credit_cap_above_limit": ("medium", "sla.credits")}


def test_penalty_rate_and_cap_above_the_limits(library):
    facts = _facts(library, "software_development", late_payment_daily_rate="0.1", late_payment_cap="30")
    assert _codes(facts) == {"penalty_rate_above_limit": ("medium", "late_payment"),
                             "penalty_cap_above_limit": ("medium", "late_payment")}
    assert _codes(facts, RiskLimits(late_payment_daily_rate_max_percent=Decimal("0.1"),
                                    late_payment_cap_max_percent=Decimal(30))) == {}


def test_findings_are_ordered_by_severity_and_have_stable_ids(library):
    facts = _facts(library, "labour_outsourcing", "zh-CN", {"termination": "no_convenience"},
                   dispatched_workers=400, total_workforce=1860, subcontracting_allowed="free")
    findings = check(facts, LIMITS)
    assert [f.severity for f in findings] == sorted((f.severity for f in findings),
                                                    key=["high", "medium", "low"].index)
    assert [f.id for f in findings] == ["dispatched_share_above_limit:personnel.labour_outsourcing",
                                        "subcontracting_without_consent:subcontracting",
                                        "fallback_position:termination"]
    assert findings[0].to_dict()["blocking"] is True
