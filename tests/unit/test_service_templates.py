"""The four built-in templates (software development, call centre, IT operations, labour outsourcing).

Each is drafted from its own sample variables in both languages through the real library
loader and drafting engine, and the rendered document is checked for what the contract
must say: the articles it needs, every promised service level with its target, the credit
cap, for software development the derived tranches and the retained quality-guarantee share,
and, for labour outsourcing, that the vendor alone manages its workers.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from services.contracts.adapters import library_files
from services.contracts.domain.document import ContractDocument, Paragraph, Table
from shared.events.contracts import SlaMetric

LIBRARY = Path(__file__).resolve().parents[2] / "services" / "contracts" / "library"
SERVICE_TEMPLATES = ("call_centre", "it_operations", "labour_outsourcing")
TEMPLATES = ("software_development", *SERVICE_TEMPLATES)
LANGUAGES = ("zh-CN", "en")

COMMON = ["parties", "service_scope", "term", "price", "payment.tranches", "change_control",
          "confidentiality", "ip.ownership", "subcontracting", "late_payment", "breach",
          "force_majeure", "termination", "disputes", "notices", "signatures"]
# Every template covers acceptance, warranty and the retained quality-guarantee share (issue 3):
# a project by milestone acceptance and a warranty period, a service by the monthly confirmation
# sheet and a quality guarantee with its retention.
SERVICE_ACCEPTANCE = ["acceptance.services", "warranty.services"]
REQUIRED_ARTICLES = {
    "software_development": ["deliverables.software", "acceptance", "warranty", "ip.ownership"],
    "call_centre": ["service_scope.call_centre", "sla.service_hours", "sla.service_levels", "sla.credits",
                    "reporting", "personnel.staffing", "data_protection", *SERVICE_ACCEPTANCE],
    "it_operations": ["service_scope.it_operations", "sla.service_hours", "sla.service_levels", "sla.credits",
                      "reporting", "personnel.staffing", "data_protection", *SERVICE_ACCEPTANCE],
    "labour_outsourcing": ["service_scope.labour_outsourcing", "personnel.labour_outsourcing",
                           "personnel.staffing", "reporting", *SERVICE_ACCEPTANCE],
}

# Wording that would hand the client direct management of the vendor's workers (the mark of
# labour dispatch). None of it may appear anywhere in a labour outsourcing draft.
CLIENT_MANAGES_WORKERS = {
    "zh-CN": ["甲方有权直接管理", "甲方负责管理乙方人员", "甲方直接管理乙方人员", "由甲方直接管理", "由甲方管理",
              "甲方有权指挥", "甲方可直接指挥", "甲方直接指挥", "接受甲方的管理", "服从甲方", "甲方对乙方人员进行考勤",
              "甲方对乙方人员进行考核", "甲方的规章制度适用于乙方人员", "甲方有权辞退", "甲方有权退回"],
    "en": ["client shall manage the vendor's", "client may direct the vendor's workers", "under the client's direction",
           "under the direction of the client", "client's management of the vendor's workers",
           "client may dismiss", "client may return", "subject to the client's rules and policies",
           "client shall supervise the vendor's workers", "client appraises the vendor's workers"],
}


# --------------------------------------------------------------------------- engine access

def _load_library():
    return library_files.load_library(LIBRARY)


def _draft(library, template_key: str, language: str, variables: dict, positions: dict | None = None
           ) -> ContractDocument:
    from services.contracts.domain import drafting
    return drafting.draft(library.template(template_key), language, variables, positions or {})


# --------------------------------------------------------------------------- helpers

def _raw_template(key: str) -> dict:
    return yaml.safe_load((LIBRARY / "templates" / f"{key}.yaml").read_text(encoding="utf-8"))


def _samples(key: str) -> dict:
    return _raw_template(key)["sample_variables"]


def _block_text(block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Table):
        return "\n".join(" | ".join(row) for row in (block.header, *block.rows))
    return str(block)


def _article_text(doc: ContractDocument, clause_key: str) -> str:
    articles = [a for a in doc.articles if a.clause_key == clause_key]
    assert articles, f"no article for {clause_key}: {[a.clause_key for a in doc.articles]}"
    return "\n".join(_block_text(b) for a in articles for b in a.blocks)


def _full_text(doc: ContractDocument) -> str:
    parts = [doc.title, *(_block_text(b) for b in doc.preamble)]
    for article in doc.articles:
        parts.append(article.heading)
        parts.extend(_block_text(b) for b in article.blocks)
    parts.extend(_block_text(b) for b in doc.closing)
    return "\n".join(parts)


def _target_texts(metric: SlaMetric, language: str) -> list[str]:
    """Ways a target may be written: 80% / 80.0%, 15分钟 / 15 minutes, 4.5, 第5个工作日 ..."""
    t = metric.target
    if metric.kind in ("service_level", "abandonment_rate", "availability", "first_contact_resolution"):
        pct = (t * 100).normalize()
        return [f"{pct:f}%", f"{pct:f} %", f"{(t * 100):.1f}%"]
    if metric.kind in ("first_response", "resolution"):
        minutes = int(t)
        texts = [f"{minutes}分钟", f"{minutes} 分钟", f"{minutes} minutes", f"{minutes} min"]
        if minutes % 60 == 0:
            hours = minutes // 60
            texts += [f"{hours}小时", f"{hours} 小时", f"{hours} hours", f"{hours} hour", f"{hours}个工作小时"]
        if minutes % 540 == 0:   # whole 9-hour business days
            days = minutes // 540
            texts += [f"{days}个工作日", f"{days} working days", f"{days} business days"]
        return texts
    return [f"{t.normalize():f}"]


@pytest.fixture(scope="module")
def library():
    return _load_library()


@pytest.fixture(scope="module")
def drafts(library):
    return {(key, lang): _draft(library, key, lang, _samples(key))
            for key in TEMPLATES for lang in LANGUAGES}


# --------------------------------------------------------------------------- samples

@pytest.mark.parametrize("key", SERVICE_TEMPLATES)
def test_sample_variables_are_coherent(key):
    raw = _raw_template(key)
    s = raw["sample_variables"]
    assert raw["kind"] == key
    assert sum(Decimal(t["percent"]) for t in s["tranches"]) == Decimal(100)
    # each regular instalment is exactly one period's fee (the monthly or quarterly fee)
    total, monthly = Decimal(s["total_price"]["amount"]), Decimal(s["monthly_fee"]["amount"])
    regular = [t for t in s["tranches"] if t["trigger"]["kind"] == "fixed_date" and not t.get("is_retention")]
    assert regular and all(
        (total * Decimal(t["percent"]) / 100) % monthly == 0 or
        (total * Decimal(t["percent"]) / 100 / monthly) == Decimal("0.95")  # 5 % retained each month
        for t in regular)
    assert s["effective_date"] < s["end_date"] and s["effective_date"].startswith(("2026", "2027"))
    assert s["client"]["name"] != s["vendor"]["name"]
    assert all(len(p["credit_code"]) == 18 for p in (s["client"], s["vendor"]))
    # the quality-guarantee share: one retention tranche, paid a while after the last regular fee
    retention = [t for t in s["tranches"] if t.get("is_retention")]
    assert len(retention) == 1 and 0 < Decimal(retention[0]["percent"]) <= 10
    assert retention[0]["trigger"]["kind"] == "after_tranche" and retention[0]["trigger"]["tranche"] == regular[-1]["key"]
    assert retention[0]["trigger"].get("days", 0) > 0 or s.get("warranty_months", 0) > 0


def test_software_samples_pay_by_milestone_and_retain_a_share():
    s = _samples("software_development")
    assert sum(Decimal(t["percent"]) for t in s["tranches"]) == Decimal(100)
    milestones = {m["key"] for m in s["milestones"]}
    kinds = [t["trigger"]["kind"] for t in s["tranches"]]
    assert kinds[0] == "on_signing" and kinds[-1] == "after_tranche"
    assert {t["trigger"]["milestone"] for t in s["tranches"] if t["trigger"]["kind"] == "milestone"} <= milestones
    retention = [t for t in s["tranches"] if t.get("is_retention")]
    assert len(retention) == 1 and Decimal(retention[0]["percent"]) <= 10
    assert retention[0]["trigger"] == {"kind": "after_tranche", "tranche": "acceptance"}   # waits for the warranty
    assert s["warranty_months"] > 0 and "amount" not in str(s["tranches"])   # amounts are derived, never typed
    assert s["effective_date"] < min(m["due_date"] for m in s["milestones"]) <= s["end_date"]
    assert {d["milestone"] for d in s["deliverables"]} <= {m["label"] for m in s["milestones"]}


@pytest.mark.parametrize("key", ["call_centre", "it_operations"])
def test_sample_sla_metrics_fit_the_shared_contract(key):
    s = _samples(key)
    metrics = [SlaMetric.model_validate(m) for m in s["sla_metrics"]]
    assert len({m.key for m in metrics}) == len(metrics)
    report = [m for m in metrics if m.kind == "report_delivery"]
    assert report and report[0].target == s["report_working_day"]
    assert Decimal(s["credit_cap"]) > 0
    if key == "call_centre":
        level = next(m for m in metrics if m.kind == "service_level")
        assert (level.target, level.threshold_seconds) == (Decimal("0.80"), 20)
        assert next(m for m in metrics if m.kind == "abandonment_rate").target <= Decimal("0.05")
        assert {"first_contact_resolution", "csat"} <= {m.kind for m in metrics}
        assert s["service_hours"] in ("business_9_18", "custom")
    else:
        p1 = [m for m in metrics if m.priority == "P1"]
        assert p1 and all(m.time_basis == "calendar" for m in p1)
        assert {m.priority for m in metrics if m.kind == "resolution"} == {"P1", "P2", "P3", "P4"}
        assert next(m for m in metrics if m.kind == "availability").target == Decimal("0.999")


MY_CLAUSES = sorted(path.stem for path in (LIBRARY / "clauses").glob("*.yaml"))
COMMON_CLAUSES = ["parties", "definitions", "term", "price", "payment.tranches", "acceptance", "warranty",
                  "change_control", "confidentiality", "ip.ownership", "subcontracting", "late_payment", "breach",
                  "force_majeure", "termination", "disputes", "notices", "miscellaneous", "signatures"]


def test_the_library_has_every_common_clause():
    assert set(COMMON_CLAUSES) <= set(MY_CLAUSES)
VARIABLE_TYPES = {"text", "integer", "decimal", "money", "percent", "date", "duration", "enum", "boolean", "party", "list"}


@pytest.mark.parametrize("clause_key", MY_CLAUSES)
def test_clause_files_follow_the_library_format(clause_key):
    clause = yaml.safe_load((LIBRARY / "clauses" / f"{clause_key}.yaml").read_text(encoding="utf-8"))
    assert clause["key"] == clause_key and set(clause["title"]) == set(LANGUAGES)
    for version in clause["versions"]:
        assert version["status"] == "published" and version["version"].count(".") == 2
        for variable in version["variables"]:
            assert variable["type"] in VARIABLE_TYPES, variable
            assert set(variable["label"]) == set(LANGUAGES)
            assert variable["type"] != "enum" or variable["values"]
        positions = version["positions"]
        assert positions[0]["key"] == "standard"
        assert len({p["key"] for p in positions}) == len(positions)
        for position in positions:
            assert set(position["body"]) == set(LANGUAGES) and all(b.strip() for b in position["body"].values())


# The shared variable names of services/contracts/library/README.md, typed as it says; each clause declares those it reads.
SHARED_VARIABLES = [
    {"name": "client", "type": "party"}, {"name": "vendor", "type": "party"},
    {"name": "contract_number", "type": "text"}, {"name": "project_name", "type": "text"},
    {"name": "effective_date", "type": "date"}, {"name": "end_date", "type": "date"},
    {"name": "sign_place", "type": "text"}, {"name": "total_price", "type": "money"},
    {"name": "monthly_fee", "type": "money"}, {"name": "tranches", "type": "list", "item": "tranche"},
    {"name": "milestones", "type": "list", "item": "milestone", "required": False},
    {"name": "acceptance_days", "type": "duration"}, {"name": "warranty_months", "type": "integer", "required": False},
    {"name": "late_payment_daily_rate", "type": "percent"}, {"name": "late_payment_cap", "type": "percent"},
    {"name": "change_response", "type": "duration"}, {"name": "confidentiality_years", "type": "integer"},
    {"name": "dispute_resolution", "type": "enum", "values": ["court", "arbitration"]},
    {"name": "arbitration_body", "type": "text", "required": False}, {"name": "court_location", "type": "text"},
    {"name": "notice_days", "type": "integer"}, {"name": "renewal_notice_days", "type": "integer"},
    {"name": "subcontracting_allowed", "type": "enum", "values": ["never", "with_written_consent", "free"]},
    {"name": "sla_metrics", "type": "list", "item": "sla_metric"},
    {"name": "service_hours", "type": "enum", "values": ["business_9_18", "24x7", "custom"]},
    {"name": "credit_cap", "type": "percent"},
]
RENDER_HELPERS = {"sla_table", "tranche_table", "milestone_table", "table", "language", "contract_kind", "contract_title"}
DOCUMENTED_FILTERS = ("money", "money_words", "percent", "date", "duration")


def _clause(key: str) -> dict:
    return yaml.safe_load((LIBRARY / "clauses" / f"{key}.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("clause_key", MY_CLAUSES)
def test_bodies_read_only_declared_or_shared_variables(clause_key):
    from jinja2 import meta
    from jinja2.sandbox import SandboxedEnvironment
    env = SandboxedEnvironment()
    env.filters.update(dict.fromkeys(DOCUMENTED_FILTERS, str))   # names only: bodies are parsed, not rendered
    shared = {v["name"] for v in SHARED_VARIABLES}
    for version in _clause(clause_key)["versions"]:
        declared = {v["name"] for v in version["variables"]}
        for position in version["positions"]:
            for language, body in position["body"].items():
                used = meta.find_undeclared_variables(env.parse(body)) - RENDER_HELPERS
                assert used <= declared | shared, f"{clause_key}/{position['key']}/{language}: {used - declared - shared}"
                # the shared names a body reads must be declared by the clause itself, with their shared type
                for name in used & shared:
                    assert name in declared, f"{clause_key} reads {name} without declaring it"


@pytest.mark.parametrize("clause_key", MY_CLAUSES)
def test_no_wording_puts_the_vendors_workers_under_the_client(clause_key):
    """Every position's literal wording, checked by the same rule that blocks approval of a version."""
    import re
    from services.contracts.domain.risk_checks import dispatch_phrases
    for version in _clause(clause_key)["versions"]:
        for position in version["positions"]:
            for language, body in position["body"].items():
                literal = re.sub(r"\{%.*?%\}", "", re.sub(r"\{\{.*?\}\}", "X", body, flags=re.S), flags=re.S)
                for paragraph in re.split(r"\n\s*\n", literal):
                    assert dispatch_phrases(paragraph, language) == [], (clause_key, position["key"], paragraph)


@pytest.mark.parametrize("key", TEMPLATES)
def test_sample_variables_validate_against_the_declared_types(key):
    from services.contracts.domain.variables import VariableSchema, VariableSpec
    raw = _raw_template(key)
    mine = [VariableSpec.from_dict(v) for a in raw["articles"] if a["clause"] in MY_CLAUSES
            for v in _clause(a["clause"])["versions"][-1]["variables"]]
    shared = [VariableSpec.from_dict(v) for v in SHARED_VARIABLES]
    names = {s.name for s in mine}
    used_shared = [s for s in shared if s.name not in names and s.name in raw["sample_variables"]]
    schema = VariableSchema(mine + used_shared)   # also checks that repeated names have one shape
    samples = {k: v for k, v in raw["sample_variables"].items() if k in schema}
    parsed, problems = schema.validate(samples)
    assert problems == []
    assert set(raw["sample_variables"]) <= set(schema.names) | {v["name"] for v in SHARED_VARIABLES}
    assert all(spec.name in parsed for spec in schema.specs if spec.required)
    every_contract = {"client", "vendor", "contract_number", "project_name", "effective_date", "end_date", "sign_place",
                      "total_price", "tranches", "acceptance_days", "late_payment_daily_rate",
                      "late_payment_cap", "change_response", "confidentiality_years", "dispute_resolution",
                      "court_location", "notice_days", "renewal_notice_days", "subcontracting_allowed"}
    kind_specific = {"software_development": {"milestones", "warranty_months"}}.get(key, {"monthly_fee", "credit_cap"})
    assert every_contract | kind_specific <= set(parsed)


@pytest.mark.parametrize("clause_key", MY_CLAUSES)
def test_shared_names_keep_their_shared_type(clause_key):
    from services.contracts.domain.variables import VariableSpec
    shared = {v["name"]: VariableSpec.from_dict(v) for v in SHARED_VARIABLES}
    for version in _clause(clause_key)["versions"]:
        for spec in (VariableSpec.from_dict(v) for v in version["variables"]):
            assert spec.name not in shared or shared[spec.name].same_shape(spec), (clause_key, spec.name)


@pytest.mark.parametrize("key", TEMPLATES)
def test_templates_require_their_kind_specific_articles(key):
    raw = _raw_template(key)
    slots = {a["clause"]: a for a in raw["articles"]}
    for clause_key in REQUIRED_ARTICLES[key]:
        assert clause_key in slots, f"{key} has no {clause_key} article"
        assert slots[clause_key].get("required") is True, (key, clause_key)
    # exactly one acceptance and one warranty article, the one written for the kind, never conditional
    for family in ("acceptance", "warranty"):
        (clause_key,) = [c for c in slots if c.split(".")[0] == family]
        assert clause_key in REQUIRED_ARTICLES[key] and "when" not in slots[clause_key], (key, clause_key)
    for clause_key in ("subcontracting", "confidentiality", "change_control", "breach", "termination", "disputes"):
        assert slots[clause_key].get("required") is True
    if key == "labour_outsourcing":
        assert slots["personnel.labour_outsourcing"]["required"] is True
        assert not any(c.startswith("sla.") for c in slots)   # paid and measured on work results, not SLAs
    elif key == "software_development":
        assert all(slots[c].get("required") for c in REQUIRED_ARTICLES[key])
        assert not any(c.startswith("sla.") for c in slots)   # paid on milestones and acceptance
    else:
        assert all(slots[c].get("required") for c in ("sla.service_hours", "sla.service_levels", "sla.credits"))


@pytest.mark.parametrize("key", TEMPLATES)
def test_templates_hold_every_clause_the_risk_checks_require(key):
    from services.contracts.domain.risk_checks import REQUIRED_CLAUSES, clauses_meeting
    slots = {a["clause"]: a for a in _raw_template(key)["articles"]}
    for requirement in REQUIRED_CLAUSES[key]:
        assert any(slots.get(c, {}).get("required") for c in clauses_meeting(requirement)), (key, requirement)


# --------------------------------------------------------------------------- drafts

@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", TEMPLATES)
def test_drafts_from_samples_with_the_required_articles(drafts, key, language):
    doc = drafts[(key, language)]
    assert doc.language == language
    keys = [a.clause_key for a in doc.articles]
    for required in [k for k in COMMON if k != "service_scope"] + REQUIRED_ARTICLES[key]:
        assert required in keys, f"{key}/{language}: missing {required}"
    assert len(keys) == len(set(keys))
    text = _full_text(doc)
    for leftover in ("{{", "}}", "{%", "%}", "Undefined"):
        assert leftover not in text, f"{key}/{language}: {leftover!r} left in the text"
    samples = _samples(key)
    assert samples["client"]["name"] in text and samples["vendor"]["name"] in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", ["call_centre", "it_operations"])
def test_sla_articles_list_each_metric_with_its_target(drafts, key, language):
    doc = drafts[(key, language)]
    levels = _article_text(doc, "sla.service_levels")
    for metric in (SlaMetric.model_validate(m) for m in _samples(key)["sla_metrics"]):
        rows = [line for line in levels.split("\n") if metric.label in line
                or (metric.priority and metric.priority in line and metric.kind.split("_")[0] in line.lower())]
        assert rows or metric.label in levels, f"{key}/{language}: {metric.key} not listed"
        assert any(t in levels for t in _target_texts(metric, language)), \
            f"{key}/{language}: target of {metric.key} not stated"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", ["call_centre", "it_operations"])
def test_credits_article_states_tiers_and_the_monthly_cap(drafts, key, language):
    samples = _samples(key)
    credits = _article_text(drafts[(key, language)], "sla.credits")
    cap = f"{Decimal(samples['credit_cap']).normalize():f}%"
    if language == "zh-CN":
        assert f"不超过当月服务费的{cap}" in credits
    else:
        assert f"not exceed {cap} of the monthly service fee" in credits
    credited = [m for m in samples["sla_metrics"] if m.get("credit")]
    for metric in credited:
        for tier in metric["credit"]["tiers"]:
            assert f"{(Decimal(tier['share_of_monthly_fee']) * 100).normalize():f}%" in credits
    paragraphs = [line for line in credits.split("\n") if line.startswith(("（", "("))]
    assert len(paragraphs) >= len(credited)


@pytest.mark.parametrize("language", LANGUAGES)
def test_call_centre_states_its_custom_hours_and_channels(drafts, language):
    doc = drafts[("call_centre", language)]
    hours = _article_text(doc, "sla.service_hours")
    assert "08:00" in hours and "20:00" in hours
    scope = _article_text(doc, "service_scope.call_centre")
    words = {"zh-CN": ["呼入服务", "呼出服务", "电子邮件"], "en": ["Inbound calls", "Outbound calls", "E-mail"]}
    assert all(w in scope for w in words[language])
    assert ("在线客服" if language == "zh-CN" else "Online chat") not in scope   # switched off in the sample


@pytest.mark.parametrize("language", LANGUAGES)
def test_it_operations_defines_priorities_and_round_the_clock_p1(drafts, language):
    doc = drafts[("it_operations", language)]
    scope = _article_text(doc, "service_scope.it_operations")
    assert all(p in scope for p in ("P1", "P2", "P3", "P4"))
    hours = _article_text(doc, "sla.service_hours")
    assert "9:00" in hours and "18:00" in hours
    assert ("自然时间" if language == "zh-CN" else "Calendar Time") in hours
    levels = _article_text(doc, "sla.service_levels")
    assert ("计划维护" if language == "zh-CN" else "planned maintenance") in levels


@pytest.mark.parametrize("language", LANGUAGES)
def test_labour_outsourcing_vendor_alone_manages_its_workers(drafts, language):
    doc = drafts[("labour_outsourcing", language)]
    clause = _article_text(doc, "personnel.labour_outsourcing")
    if language == "zh-CN":
        for phrase in ("本合同不属于劳务派遣", "乙方独立负责乙方人员的工作安排", "缴纳社会保险",
                       "不对乙方人员进行管理、指挥或考核", "临时性、辅助性或者替代性", "10%", "吴海东"):
            assert phrase in clause
    else:
        for phrase in ("not a labour dispatch", "The Vendor alone is responsible for assigning their work",
                       "social insurance", "does not manage, direct or appraise the Vendor's Workers",
                       "temporary, auxiliary or substitute posts", "10%", "吴海东"):
            assert phrase in clause
    from services.contracts.domain.risk_checks import dispatch_phrases
    for article in doc.articles:
        for block in article.blocks:
            assert dispatch_phrases(_block_text(block), language) == [], (article.clause_key, _block_text(block))
    text = _full_text(doc)
    lowered = text.lower()
    for phrase in CLIENT_MANAGES_WORKERS[language]:
        assert phrase.lower() not in lowered, f"labour/{language}: {phrase!r} gives the client management of workers"
    scope = _article_text(doc, "service_scope.labour_outsourcing")
    for kpi in _samples("labour_outsourcing")["kpis"]:
        assert kpi["label"] in scope and kpi["target"] in scope
    assert ("不针对乙方人员个人" if language == "zh-CN" else "not for any individual member") in scope


@pytest.mark.parametrize("language", LANGUAGES)
def test_software_tranches_are_derived_and_the_retention_waits_for_the_warranty(drafts, language):
    doc = drafts[("software_development", language)]
    samples = _samples("software_development")
    total = Decimal(samples["total_price"]["amount"])
    rows = [b for b in doc.articles if b.clause_key == "payment.tranches"][0].blocks
    table = next(b for b in rows if isinstance(b, Table))
    amounts = [Decimal(row[2].split(" ")[-1].lstrip("¥").replace(",", "")) for row in table.rows[:-1]]
    assert sum(amounts) == total and len(amounts) == len(samples["tranches"])
    assert amounts == [total * Decimal(t["percent"]) / 100 for t in samples["tranches"]]
    warranty = _article_text(doc, "warranty")
    months = samples["warranty_months"]
    assert (f"质量保证期为{months}个月" if language == "zh-CN" else f"warranty period is {months} months") in warranty
    retained = f"{amounts[-1]:,.2f}"
    assert retained in warranty and retained in table.rows[-2][2]
    assert ("质量保证期届满" if language == "zh-CN" else f"{months}-month warranty period") in table.rows[-2][3]
    scope = _article_text(doc, "deliverables.software")
    assert all(m["label"] in scope for m in samples["milestones"])
    assert all(d["item"] in scope for d in samples["deliverables"])


SHEET = {"zh-CN": ("服务确认单", "结算确认单"), "en": ("Service Confirmation Sheet", "Settlement Statement")}
DEEMED = {"zh-CN": "视为甲方确认", "en": "deemed to have confirmed"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", SERVICE_TEMPLATES)
def test_services_are_confirmed_monthly_and_reworked_at_the_vendors_cost(library, drafts, key, language):
    doc = drafts[(key, language)]
    confirmation = _article_text(doc, "acceptance.services")
    services_sheet, results_sheet = SHEET[language]
    sheet = results_sheet if key == "labour_outsourcing" else services_sheet
    other = services_sheet if key == "labour_outsourcing" else results_sheet
    assert sheet in confirmation and other not in confirmation
    days = _samples(key)["acceptance_days"]["value"]
    assert (f"{days}个工作日内" if language == "zh-CN" else f"{days} working days") in confirmation
    assert DEEMED[language] in confirmation
    assert ("自行承担费用返工" if language == "zh-CN" else "redo, repeat or correct at its own cost") in confirmation
    if key == "labour_outsourcing":   # work results are confirmed, never the workers
        assert ("工作成果" if language == "zh-CN" else "work results") in confirmation
    # the monthly report points to this article instead of repeating (and contradicting) it
    title = "服务确认与验收" if language == "zh-CN" else "Service Confirmation and Acceptance"
    reporting = _article_text(doc, "reporting")
    assert sheet in reporting and title in reporting and DEEMED[language] not in reporting
    if key == "labour_outsourcing":
        assert title in _article_text(doc, "service_scope.labour_outsourcing")
    # the fallback: only a signed sheet confirms, and nothing else in the contract says otherwise
    strict = _draft(library, key, language, _samples(key), {"acceptance.services": "no_deemed_confirmation"})
    assert DEEMED[language] not in _full_text(strict)
    assert ("不因甲方未作答复而视为确认" if language == "zh-CN" else "never deemed to be confirmation") in \
        _article_text(strict, "acceptance.services")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", SERVICE_TEMPLATES)
def test_services_warranty_holds_the_retained_quality_guarantee_share(drafts, key, language):
    doc = drafts[(key, language)]
    samples = _samples(key)
    table = next(b for b in _article_blocks(doc, "payment.tranches") if isinstance(b, Table))
    (retained_row,) = [row for row in table.rows if row[0] in
                       {t["label"] for t in samples["tranches"] if t.get("is_retention")}]
    warranty = _article_text(doc, "warranty.services")
    assert retained_row[0] in warranty and retained_row[2].split(" ")[-1].lstrip("¥") in warranty
    assert ("无息返还质保金余额" if language == "zh-CN" else "balance of the retention without interest") in warranty
    assert ("尚未解决的书面索赔" if language == "zh-CN" else "unresolved written claim") in warranty
    months = samples.get("warranty_months")
    if months:
        assert (f"服务质量保证期为本合同期限届满或提前终止之日起{months}个月" if language == "zh-CN"
                else f"guarantee period is {months} months from the expiry") in warranty
    wages = "劳动报酬" if language == "zh-CN" else "wages"
    assert (wages in warranty) == (key == "labour_outsourcing")


def _article_blocks(doc: ContractDocument, clause_key: str) -> tuple:
    return next(a.blocks for a in doc.articles if a.clause_key == clause_key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_price_states_the_total_in_figures_and_in_words(drafts, language):
    from services.contracts.domain.amount_words import english_amount_words, rmb_uppercase
    for key in TEMPLATES:
        total = Decimal(_samples(key)["total_price"]["amount"])
        price = _article_text(drafts[(key, language)], "price")
        words = rmb_uppercase(total) if language == "zh-CN" else english_amount_words(total, "CNY")
        assert f"{total:,.2f}" in price and words in price, key


@pytest.mark.parametrize("language", LANGUAGES)
def test_dispute_wording_follows_the_choice(library, language):
    arbitration = _article_text(_draft(library, "call_centre", language, _samples("call_centre")), "disputes")
    assert _samples("call_centre")["arbitration_body"] in arbitration
    court = dict(_samples("call_centre"), dispute_resolution="court")
    text = _article_text(_draft(library, "call_centre", language, court), "disputes")
    assert court["court_location"] in text and court["arbitration_body"] not in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("allowed", ["never", "with_written_consent", "free"])
def test_subcontracting_wording_follows_the_variable(library, language, allowed):
    variables = dict(_samples("software_development"), subcontracting_allowed=allowed)
    text = _article_text(_draft(library, "software_development", language, variables), "subcontracting")
    consent = "事先书面同意" if language == "zh-CN" else "prior written consent"
    assert (consent in text) == (allowed == "with_written_consent")


@pytest.mark.parametrize("language", LANGUAGES)
def test_fallback_positions_render_and_differ(library, drafts, language):
    cases = [("call_centre", "sla.credits", "sole_remedy"),
             ("it_operations", "personnel.staffing", "key_personnel_consent"),
             ("labour_outsourcing", "personnel.labour_outsourcing", "evidence_on_request"),
             ("software_development", "ip.ownership", "vendor_background_licence"),
             ("software_development", "ip.ownership", "vendor_owns_with_licence"),
             ("software_development", "acceptance", "no_deemed_acceptance"),
             ("call_centre", "acceptance.services", "no_deemed_confirmation"),
             ("labour_outsourcing", "acceptance.services", "no_deemed_confirmation"),
             ("it_operations", "warranty.services", "bank_guarantee"),
             ("labour_outsourcing", "warranty.services", "bank_guarantee"),
             ("software_development", "warranty", "bank_guarantee"),
             ("software_development", "confidentiality", "trade_secrets_indefinite"),
             ("software_development", "confidentiality", "one_way"),
             ("call_centre", "term", "auto_renewal"),
             ("call_centre", "price", "expenses_reimbursed"),
             ("call_centre", "payment.tranches", "pay_then_invoice"),
             ("it_operations", "change_control", "deemed_refused"),
             ("it_operations", "late_payment", "grace_period"),
             ("it_operations", "breach", "uncapped"),
             ("labour_outsourcing", "termination", "no_convenience"),
             ("labour_outsourcing", "termination", "mutual_convenience")]
    for key, clause, position in cases:
        standard = _article_text(drafts[(key, language)], clause)
        fallback = _article_text(_draft(library, key, language, _samples(key), {clause: position}), clause)
        assert fallback and fallback != standard, f"{key}/{clause}/{position}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_business_hours_and_24x7_variants_render(library, language):
    expected = {"business_9_18": {"zh-CN": "9:00至18:00", "en": "from 9:00 to 18:00"},
                "24x7": {"zh-CN": "每日二十四小时", "en": "twenty-four hours a day"}}
    for hours, expect in ((h, e[language]) for h, e in expected.items()):
        variables = dict(_samples("call_centre"), service_hours=hours)
        text = _article_text(_draft(library, "call_centre", language, variables), "sla.service_hours")
        assert expect in text
        assert "08:00" not in text
