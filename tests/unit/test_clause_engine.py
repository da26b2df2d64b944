"""The clause engine: money allocation, validation, JSON Schema, the sandbox, versions, deviations,
the structured terms and deterministic documents, on the built-in library and small libraries made here."""
from __future__ import annotations

import hashlib
import io
import re
from decimal import Decimal

import docx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.contracts.adapters.docx_writer import render_docx
from services.contracts.domain import drafting
from services.contracts.domain.amount_words import parse_english_amount_words, parse_rmb_uppercase
from services.contracts.domain.clauses import ClausePosition, ClauseVersion, ClauseVersionImmutable
from services.contracts.domain.document import Paragraph, Table
from services.contracts.adapters.library_files import load_library
from services.contracts.domain.clause_text import (ClauseTextInvalid, MissingVariable, UnsafeClauseText,
                                                 render_blocks)
from services.contracts.domain.templates import ArticleSlot, ContractLibrary, ContractTemplate
from services.contracts.domain.variables import JSON_SCHEMA_DIALECT, VariablesInvalid, VariableSpec
from shared.events.contracts import ContractTerms
from shared.money import allocate_percent

TEMPLATES = ("software_development", "call_centre", "it_operations", "labour_outsourcing")
LANGUAGES = ("zh-CN", "en")


@pytest.fixture(scope="module")
def library():
    return load_library()


def _samples(library, key: str) -> dict:
    return dict(library.template(key).sample_variables)


def _text(doc) -> str:
    lines = [doc.title, *(b.text for b in doc.preamble)]
    for article in doc.articles:
        lines.append(article.heading)
        for block in article.blocks:
            if isinstance(block, Paragraph):
                lines.append(block.text)
            else:
                lines += [" | ".join(row) for row in (block.header, *block.rows)]
    return "\n".join(lines)


# --- allocation ----------------------------------------------------------------------------------

def test_allocate_the_documented_example():
    shares = allocate_percent(Decimal("1234567.89"), [Decimal(30), Decimal(30), Decimal(30), Decimal(10)])
    assert shares == [Decimal("370370.37"), Decimal("370370.37"), Decimal("370370.36"), Decimal("123456.79")]


def test_allocate_refuses_percentages_that_do_not_add_up_to_100():
    with pytest.raises(ValueError):
        allocate_percent(Decimal(100), [Decimal(50), Decimal("49.99")])


@st.composite
def _percents(draw) -> list[Decimal]:
    """1 to 12 positive shares in hundredths of a percent that add up to exactly 100."""
    cuts = sorted(draw(st.sets(st.integers(1, 9_999), max_size=11)))
    bounds = [0, *cuts, 10_000]
    return [Decimal(b - a) / 100 for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=300, deadline=None)
@given(total_fen=st.integers(0, 99_999_999_999_999), percents=_percents())
def test_allocate_adds_up_to_the_total_to_the_fen(total_fen, percents):
    total = Decimal(total_fen) / 100
    shares = allocate_percent(total, percents)
    assert sum(shares) == total
    for share, percent in zip(shares, percents):
        assert share == share.quantize(Decimal("0.01")) and share >= 0
        assert abs(share - total * percent / 100) < Decimal("0.01")   # each within one fen of its exact share


# --- validation ----------------------------------------------------------------------------------

def test_every_missing_or_invalid_variable_is_listed_by_pointer_in_one_error(library):
    variables = _samples(library, "software_development")
    del variables["client"], variables["sign_place"]
    variables["effective_date"] = "2026-02-30"
    variables["late_payment_daily_rate"] = "-1"
    variables["dispute_resolution"] = "duel"
    variables["tranches"] = [dict(t) for t in variables["tranches"]]
    variables["tranches"][1] = dict(variables["tranches"][1], percent="31")
    variables["tranches"][2] = dict(variables["tranches"][2], trigger={"kind": "milestone", "milestone": "nope"})
    variables["milestones"] = [dict(m) for m in variables["milestones"]]
    variables["milestones"][0] = dict(variables["milestones"][0], extra="x")
    variables["favourite_colour"] = "blue"
    with pytest.raises(VariablesInvalid) as caught:
        drafting.draft(library.template("software_development"), "zh-CN", variables,
                       {"breach": {"omit": True}, "ip.ownership": "nonsense"})
    pointers = {p.pointer for p in caught.value.problems}
    assert {"/variables/client", "/variables/sign_place", "/variables/effective_date",
            "/variables/late_payment_daily_rate", "/variables/dispute_resolution", "/variables/tranches",
            "/variables/tranches/2/trigger/milestone", "/variables/milestones/0/extra",
            "/variables/favourite_colour", "/positions/breach", "/positions/ip.ownership"} <= pointers
    assert all(p.startswith(("/variables/", "/positions/")) for p in pointers)
    assert caught.value.status == 422   # the problem+json lists the same pointers
    assert {e["pointer"] for e in caught.value.errors} == pointers


def test_court_or_arbitration_needs_its_forum(library):
    variables = dict(_samples(library, "call_centre"), dispute_resolution="arbitration")
    del variables["arbitration_body"]
    with pytest.raises(VariablesInvalid) as caught:
        drafting.draft(library.template("call_centre"), "en", variables)
    assert [p.pointer for p in caught.value.problems] == ["/variables/arbitration_body"]


# --- JSON Schema ---------------------------------------------------------------------------------
# jsonschema is not a dependency: a small validator for the keywords pydantic emits, which refuses
# any keyword it does not know, so a schema that used one would fail here rather than in a form.

_ANNOTATIONS = {"title", "description", "default", "examples", "format", "x-labels"}


def _validate(schema: dict, value, root: dict, where: str = "") -> list[str]:
    unknown = set(schema) - _ANNOTATIONS - {"$ref", "$schema", "$defs", "type", "properties", "required",
                                            "additionalProperties", "items", "enum", "const", "anyOf", "pattern",
                                            "minimum", "maximum", "exclusiveMinimum", "minItems", "minLength",
                                            "maxLength"}
    assert not unknown, f"{where}: unknown keywords {unknown}"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        assert name in root["$defs"], f"{where}: dangling {schema['$ref']}"
        return _validate(root["$defs"][name], value, root, where)
    if "anyOf" in schema:
        results = [_validate(s, value, root, where) for s in schema["anyOf"]]
        return [] if any(not r for r in results) else [f"{where}: no alternative fits"]
    errors = []
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
             "integer": int, "number": (int, float)}
    wanted = schema.get("type")
    if wanted and (not isinstance(value, types[wanted]) or (wanted == "integer" and isinstance(value, bool))):
        return [f"{where}: not {wanted}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: not {schema['const']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: does not match {schema['pattern']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{where}: too short")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: below {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{where}: above {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{where}: not above {schema['exclusiveMinimum']}")
    if wanted == "array":
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: too few items")
        for i, item in enumerate(value):
            errors += _validate(schema.get("items", {}), item, root, f"{where}/{i}")
    if wanted == "object":
        properties = schema.get("properties", {})
        errors += [f"{where}/{name}: required" for name in schema.get("required", []) if name not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{where}/{name}: not allowed" for name in value if name not in properties]
        for name, item in value.items():
            if name in properties:
                errors += _validate(properties[name], item, root, f"{where}/{name}")
    return errors


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", TEMPLATES)
def test_each_template_exports_a_json_schema_its_samples_satisfy(library, key, language):
    template = library.template(key)
    schema = template.json_schema(language)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT and schema["type"] == "object"
    assert schema["additionalProperties"] is False and schema["title"] == template.title[language]
    assert set(schema["properties"]) == set(template.schema.names)
    assert set(schema["required"]) == {s.name for s in template.schema.specs if s.required}
    labels = {name: prop.get("title") for name, prop in schema["properties"].items()}
    assert labels["client"] == ("甲方" if language == "zh-CN" else "Client (Party A)")
    assert _validate(schema, template.sample_variables, schema) == []
    broken = dict(template.sample_variables, total_price={"amount": "12.345", "currency": "CNY"},
                  tranches=[], notice_days="thirty")
    broken.pop("contract_number")
    errors = _validate(schema, broken, schema)
    assert {e.split(":")[0] for e in errors} >= {"/contract_number", "/total_price/amount", "/tranches",
                                                 "/notice_days"}


# --- the sandbox ---------------------------------------------------------------------------------

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ project_name.__class__ }}",
    "{{ project_name['__class__'] }}",
    "{{ project_name|attr('__class__') }}",
    "{{ tranches|map(attribute='__class__')|list }}",
    "{% import 'os' as os %}{{ os }}",
    "{% from 'x' import y %}",
    "{% include '/etc/passwd' %}",
    "{% extends 'base.html' %}",
    "{{ self._TemplateReference__context }}",
    "{{ client._asdict() }}",
]
RUNTIME_ONLY = ["{{ 'x' * 100000000 }}", "{{ 10 ** 100000 }}", "{{ range(100000000)|list }}",
                "{{ project_name.format.__self__ }}", "{% set t = tranches %}{{ t.append(1) }}"]


def _clause_version(body: str, variables=("project_name",)) -> ClauseVersion:
    specs = [VariableSpec(name=name, type="text") for name in variables]
    return ClauseVersion("probe", "1.0.0", "draft", (ClausePosition("standard", {"zh-CN": body, "en": body}),), specs)


@pytest.mark.parametrize("body", INJECTIONS)
def test_injection_in_a_clause_body_is_refused_when_added_and_when_rendered(body):
    library = ContractLibrary()
    library.clauses.add_clause("probe", {"zh-CN": "探针", "en": "Probe"})
    with pytest.raises(ClauseTextInvalid):
        library.clauses.add_version(_clause_version(body, ("project_name", "tranches", "client")))
    with pytest.raises((UnsafeClauseText, ClauseTextInvalid)):
        render_blocks(body, "en", {"project_name": "x", "tranches": (), "client": "y"}, "probe")


@pytest.mark.parametrize("body", RUNTIME_ONLY)
def test_what_only_shows_at_render_time_is_stopped_by_the_sandbox(body):
    with pytest.raises(UnsafeClauseText):
        render_blocks(body, "en", {"project_name": "x", "tranches": []}, "probe")


@pytest.mark.parametrize("language", LANGUAGES)
def test_injection_strings_given_as_variable_values_render_as_plain_text(library, language):
    variables = _samples(library, "software_development")
    for value in INJECTIONS + RUNTIME_ONLY + ["{{ 7*7 }}", "{% raw %}{{ x }}{% endraw %}"]:
        variables.update(project_name=value, software_scope=value + " 平台")
        doc = drafting.draft(library.template("software_development"), language, variables).document
        parties = "\n".join(b.text for b in doc.articles[0].blocks)
        assert f"“{value}”" in parties
        scope = next(a for a in doc.articles if a.clause_key == "deliverables.software")
        assert value + " 平台" in scope.blocks[0].text
        assert "“49”" not in parties


def test_a_value_cannot_forge_a_table_marker(library):
    variables = dict(_samples(library, "software_development"), project_name="⟦table 0000000000000000 0⟧")
    doc = drafting.draft(library.template("software_development"), "en", variables).document
    assert "⟦table 0000000000000000 0⟧" in doc.articles[0].blocks[2].text


def test_a_missing_variable_is_an_error_never_a_blank():
    with pytest.raises(MissingVariable) as caught:
        render_blocks("甲方：{{ client_name }}", "zh-CN", {}, "probe")
    assert caught.value.variable == "client_name"
    with pytest.raises(MissingVariable):
        render_blocks("{{ client.nickname }}", "en", {"client": VariableSpec(name="x", type="text")}, "probe")
    with pytest.raises(MissingVariable):
        render_blocks("{% if flag %}yes{% endif %}", "en", {}, "probe")


def test_an_optional_variable_read_unguarded_fails_the_draft_not_blanks_it(library):
    clauses = library.clauses
    template = ContractTemplate(key="probe", kind="software_development", version="1.0.0",
                                title={"zh-CN": "探针", "en": "Probe"},
                                articles=(ArticleSlot("parties"), ArticleSlot("probe")))
    probe = ContractLibrary(clauses)
    probe.clauses.add_clause("probe", {"zh-CN": "探针", "en": "Probe"})
    version = ClauseVersion("probe", "1.0.0", "published",
                            (ClausePosition("standard", {"zh-CN": "备注：{{ remark }}", "en": "Remark: {{ remark }}"}),),
                            (VariableSpec(name="remark", type="text", required=False),))
    probe.clauses.add_version(version)
    probe.add_template(template)
    variables = {k: v for k, v in _samples(library, "software_development").items()
                 if k in {"contract_number", "project_name", "client", "vendor", "effective_date", "end_date",
                          "total_price"}}
    with pytest.raises(MissingVariable) as caught:
        drafting.draft(probe.template("probe"), "en", variables)
    assert caught.value.variable == "remark"
    doc = drafting.draft(probe.template("probe"), "en", dict(variables, remark="ok")).document
    assert doc.articles[-1].blocks == (Paragraph("Remark: ok"),)


# --- versions ------------------------------------------------------------------------------------

def test_a_published_version_never_changes(library):
    clause = library.clauses.clause("confidentiality")
    published = clause.version("1.0.0")
    assert published.status == "published"
    changed = ClauseVersion("confidentiality", "1.0.0", "published",
                            (ClausePosition("standard", {"zh-CN": "无", "en": "None"}),), published.variables)
    with pytest.raises(ClauseVersionImmutable):
        library.clauses.add_version(changed)
    with pytest.raises(ClauseVersionImmutable):
        library.clauses.publish("confidentiality", "1.0.0")
    assert clause.version("1.0.0") is published


def test_a_new_version_reaches_new_drafts_and_a_draft_version_never_does():
    library = load_library()
    body = {"zh-CN": "双方保密{{ confidentiality_years }}年。", "en": "Secret for {{ confidentiality_years }} years."}
    old = library.clauses.clause("confidentiality").version("1.0.0")
    library.clauses.add_version(ClauseVersion("confidentiality", "1.1.0", "draft",
                                              (ClausePosition("standard", body),), old.variables))
    template = library.template("software_development")
    variables = dict(template.sample_variables)
    assert drafting.draft(template, "en", variables).clause_versions["confidentiality"] == "1.0.0"
    library.clauses.publish("confidentiality", "1.1.0")
    new = drafting.draft(library.template("software_development"), "en", variables)
    assert new.clause_versions["confidentiality"] == "1.1.0"
    assert next(a for a in new.articles if a.clause_key == "confidentiality").blocks == (
        Paragraph(f"Secret for {variables['confidentiality_years']} years."),)
    library.clauses.deprecate("confidentiality", "1.1.0")
    assert drafting.draft(library.template("software_development"), "en", variables
                          ).clause_versions["confidentiality"] == "1.0.0"


# --- deviations ----------------------------------------------------------------------------------

def test_fallback_custom_and_omitted_positions_are_recorded_as_deviations(library):
    custom = {"zh-CN": "乙方保留其既有知识产权。", "en": "The Vendor keeps its background IP."}
    draft = drafting.draft(library.template("software_development"), "en", _samples(library, "software_development"),
                           {"confidentiality": "one_way", "ip.ownership": {"custom": custom},
                            "late_payment": {"omit": True}, "acceptance": "standard"})
    recorded = {d.clause_key: (d.kind, d.position) for d in draft.deviations}
    assert recorded == {"confidentiality": ("fallback", "one_way"), "ip.ownership": ("custom", None),
                        "late_payment": ("omitted", None)}
    assert next(d for d in draft.deviations if d.kind == "custom").text["en"] == custom["en"]
    keys = [a.clause_key for a in draft.articles]
    assert "late_payment" not in keys and "late_payment" not in draft.clause_versions
    assert "late_payment" not in draft.terms   # a left-out article promises no fee
    ip = next(a for a in draft.articles if a.clause_key == "ip.ownership")
    assert ip.blocks == (Paragraph(custom["en"]),)


def test_a_required_article_cannot_be_omitted(library):
    with pytest.raises(VariablesInvalid) as caught:
        drafting.draft(library.template("software_development"), "en", _samples(library, "software_development"),
                       {"warranty": {"omit": True}})
    assert [p.pointer for p in caught.value.problems] == ["/positions/warranty"]


# --- terms ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", TEMPLATES)
def test_extracted_terms_are_contract_terms(library, key):
    samples = _samples(library, key)
    draft = drafting.draft(library.template(key), "zh-CN", samples)
    terms = ContractTerms.model_validate({**draft.terms, "contract_id": "c-1", "org": "org-1", "version": 1})
    assert [p.role for p in terms.parties] == ["client", "vendor"]
    assert [p.name for p in terms.parties] == [samples["client"]["name"], samples["vendor"]["name"]]
    assert terms.total_amount == Decimal(samples["total_price"]["amount"]) and terms.currency == "CNY"
    assert sum(t.amount for t in terms.tranches) == terms.total_amount
    assert [t.key for t in terms.tranches] == [t["key"] for t in samples["tranches"]]
    assert str(terms.effective_date) == samples["effective_date"] and str(terms.end_date) == samples["end_date"]
    assert terms.late_payment.daily_rate == Decimal(samples["late_payment_daily_rate"]) / 100
    assert terms.late_payment.cap_share == Decimal(samples["late_payment_cap"]) / 100
    assert terms.change_response.days == samples["change_response"]["value"]
    if key in ("call_centre", "it_operations"):
        assert [m.key for m in terms.sla.metrics] == [m["key"] for m in samples["sla_metrics"]]
        assert terms.sla.credit_cap_share == Decimal(samples["credit_cap"]) / 100
        assert terms.monthly_fee == Decimal(samples["monthly_fee"]["amount"])
    else:
        assert terms.sla is None
    if key == "software_development":
        assert terms.warranty_months == samples["warranty_months"]
        assert [m.key for m in terms.milestones] == [m["key"] for m in samples["milestones"]]
        assert [t.is_retention for t in terms.tranches] == [False, False, False, True]


# --- documents -----------------------------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_the_same_draft_renders_to_a_byte_identical_docx(library, language):
    template = library.template("software_development")
    first = render_docx(drafting.draft(template, language, dict(template.sample_variables)).document)
    second = render_docx(drafting.draft(template, language, dict(template.sample_variables)).document)
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    changed = dict(template.sample_variables, project_name="另一个项目")
    assert render_docx(drafting.draft(template, language, changed).document) != first
    reopened = "\n".join(p.text for p in docx.Document(io.BytesIO(first)).paragraphs)
    assert template.sample_variables["vendor"]["name"] in reopened


_ZH_AMOUNT = re.compile(r"¥([\d,]+\.\d{2})（大写：(人民币[^）]+)）")
_EN_AMOUNT = re.compile(r"CNY ([\d,]+\.\d{2}) \((RMB [^)]+ Only)\)")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", TEMPLATES)
def test_amounts_in_words_agree_with_the_figures(library, key, language):
    text = _text(drafting.draft(library.template(key), language, _samples(library, key)).document)
    found = (_ZH_AMOUNT if language == "zh-CN" else _EN_AMOUNT).findall(text)
    assert found, "the price is stated in words"
    for figures, words in found:
        amount = Decimal(figures.replace(",", ""))
        read = parse_rmb_uppercase(words) if language == "zh-CN" else parse_english_amount_words(words, "CNY")
        assert read == amount, (figures, words)


def test_tables_come_out_as_tables(library):
    doc = drafting.draft(library.template("call_centre"), "zh-CN", _samples(library, "call_centre")).document
    payment = next(a for a in doc.articles if a.clause_key == "payment.tranches")
    table = next(b for b in payment.blocks if isinstance(b, Table))
    assert table.header[0] == "付款阶段" and table.rows[-1][0] == "合计"


def test_a_render_whose_words_disagree_with_the_figures_fails(library, monkeypatch):
    from services.contracts.domain import formatters
    from services.contracts.domain.clause_text import ClauseTextError
    monkeypatch.setattr(formatters, "rmb_uppercase", lambda amount: "人民币壹元整")
    with pytest.raises(ClauseTextError, match="words"):
        drafting.draft(library.template("software_development"), "zh-CN", _samples(library, "software_development"))


# --- the library files ---------------------------------------------------------------------------

def _library_with(tmp_path, name: str, text: str):
    (tmp_path / "clauses").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "clauses" / name).write_text(text, encoding="utf-8")
    return load_library(tmp_path)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.yaml", "key: a\ntitle: {zh-CN: 甲, en: One, two}\nversions: []\n", "title must map exactly"),
    ("b.yaml", "key: a\ntitle: {zh-CN: 甲, en: A}\nversions: []\n", "must be named a.yaml"),
    ("a.yaml", "key: a\ntitle: {zh-CN: 甲, en: A}\nversions:\n  - version: 1.0.0\n    status: published\n"
               "    positions:\n      - {key: standard, body: {zh-CN: '{{ x.__class__ }}', en: x}}\n", "private attribute"),
    ("a.yaml", "key: a\ntitle: {zh-CN: 甲, en: A}\nversions:\n  - version: 1.0.0\n    status: published\n"
               "    positions:\n      - {key: standard, body: {zh-CN: '{{ undeclared }}', en: x}}\n", "does not declare"),
    ("a.yaml", "key: a\ntitle: {zh-CN: 甲, en: A}\nversions:\n  - {version: 1.0.0, status: published, positions: "
               "[{key: standard, body: {zh-CN: 甲, en: A}}]}\n  - {version: 1.0.0, status: published, positions: "
               "[{key: standard, body: {zh-CN: 乙, en: B}}]}\n", "never changes"),
    ("a.yaml", "!!python/object/apply:os.system ['true']\n", "not valid YAML"),
])
def test_a_library_file_that_cannot_load_names_itself_and_the_problem(tmp_path, name, text, message):
    from services.contracts.adapters.library_files import LibraryFileError
    with pytest.raises(LibraryFileError, match=message) as caught:
        _library_with(tmp_path, name, text)
    assert caught.value.path.name == name


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_html_preview_escapes_what_the_user_typed(library, language):
    from services.contracts.adapters.html_writer import render_html
    variables = dict(_samples(library, "software_development"), project_name="<script>alert(1)</script>{{ 7*7 }}")
    html = render_html(drafting.draft(library.template("software_development"), language, variables).document)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}" in html
    assert html.count("<table") >= 3   # deliverables, milestones, tranches
