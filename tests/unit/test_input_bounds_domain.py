"""Bad input costs no more than its size (issue 16), in the pure parts: the clause rendering
budget, the dispatch risk check on a large text, download file names and CSV cells."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from urllib.parse import unquote

import pytest

from services.contracts.domain.clause_text import ClauseOverBudget, render_blocks
from services.contracts.domain.risk_checks import dispatch_phrases
from services.payments.adapters.csv_export import aging_csv, cash_flow_csv
from services.payments.domain.reports import AGING_BUCKETS, AgingLine, AgingReport, ForecastLine
from shared.downloads import ascii_fallback, attachment

# --- the rendering budget ------------------------------------------------------------------------

OVER_BUDGET = {
    "namespace doubled with ~": "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                                "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "namespace doubled with +": "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                                "{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "doubled without a loop": "{% set s = 'x' * 100000 %}" + "{% set s = s ~ s %}" * 30 + "{{ s|length }}",
    "nested range": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done",
    "output": "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    "filter width": "{{ 'x'|center(1000000000) }}",
    "method width": "{{ 'x'.ljust(1000000000) }}",
    "printf width": "{{ '%1000000000s' % 'x' }}",
    "format width": "{{ '{:>1000000000}'.format('x') }}",
    "join filter": "{% set s = 'x' * 100000 %}{{ ([s] * 100000)|join }}",
    "str.join": "{% set s = 'x' * 100000 %}{{ ''.join([s] * 100000) }}",
}


@pytest.mark.parametrize("body", OVER_BUDGET.values(), ids=OVER_BUDGET.keys())
def test_a_body_over_the_rendering_budget_is_refused(body):
    with pytest.raises(ClauseOverBudget) as refused:
        render_blocks(body, "en", {}, "clause x 1.0.0, position standard")
    assert refused.value.status == 422 and "rendering budget" in refused.value.detail
    assert refused.value.where == "clause x 1.0.0, position standard"


def test_a_body_within_the_budget_renders_as_before():
    body = ("Article {{ n }}: {% for i in range(3) %}{{ i }}{% endfor %} {{ [1, 2]|join(', ') }} "
            "{{ 1000000|string }} {{ '%05d' % n }} {{ 'ab' ~ 'cd' }} {{ '{:>4}'.format(n) }}")
    [paragraph] = render_blocks(body, "en", {"n": 5}, "clause x")
    assert paragraph.text == "Article 5: 012 1, 2 1000000 00005 abcd    5"


def test_the_loop_budget_is_per_render():
    body = "{% for i in range(60000) %}{% endfor %}ok"
    for _ in range(3):   # 180,000 turns over three renders, 60,000 in each
        assert render_blocks(body, "en", {}, "clause x")[0].text == "ok"


# --- the dispatch risk check is linear --------------------------------------------------------------

def test_dispatch_wording_in_a_468_kib_clause_is_found_phrase_by_phrase():
    unit = "乙方人员由甲方直接管理，" * 9 + "甲方不对乙方人员进行管理，" + "服从甲方安排。"
    text = unit * (468 * 1024 // len(unit.encode()) + 1)
    assert len(text.encode()) >= 468 * 1024
    phrases = dispatch_phrases(text, "zh-CN")
    units = text.count(unit)
    # per unit: nine direct-management phrases (two patterns of the management family over the same words
    # count once) and one work assignment (服从甲方安排); the negated one skipped
    assert phrases.count("乙方人员由甲方直接管理") == 9 * units
    assert phrases.count("服从甲方安排") == units
    assert len(phrases) == 10 * units


def test_english_dispatch_wording_in_one_long_sentence_keeps_its_negations():
    unit = ("the workers shall be under the direct management of the client, "
            "and never under the direct management of the client, ")
    text = unit * (468 * 1024 // len(unit) + 1)   # no full stop anywhere: one sentence
    phrases = dispatch_phrases(text, "en")
    assert len(phrases) == text.count(unit)          # the negated half of each unit is skipped
    assert set(phrases) == {"under the direct management of the client"}


# --- download names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, fallback", [
    ("禾链采〔2026〕015号-v1.docx", "2026_015_-v1.docx"),
    ("JC-SD-2026-0093-v1.docx", "JC-SD-2026-0093-v1.docx"),
    ("合同.docx", "download.docx"),
    ("Café-v2.docx", "Cafe-v2.docx"),
])
def test_a_file_name_in_any_script_becomes_an_rfc_6266_header(name, fallback):
    header = attachment(name)
    header.encode("latin-1")
    assert ascii_fallback(name) == fallback
    assert header == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''" + header.split("''", 1)[1]
    assert unquote(header.split("''", 1)[1]) == name


def test_a_file_name_cannot_inject_a_header():
    header = attachment('a"\r\nSet-Cookie: x=1;\\/.csv')
    assert "\r" not in header and "\n" not in header
    assert header.split('filename="', 1)[1].split('"', 1)[0] == "aSet-Cookie_x_1.csv"


# --- CSV cells ----------------------------------------------------------------------------------------

def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize("number", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_evaluate_is_neutralised(number):
    line = AgingLine("c-1", number, "CNY")
    line.buckets[AGING_BUCKETS[0]] = Decimal("-10.50")
    rows = read_csv(aging_csv(AgingReport(dt.date(2026, 10, 1), [line])))
    assert rows[1][2] == "'" + number
    assert rows[1][4] == "-10.50"   # amounts stay numbers


def test_plain_cells_are_unchanged():
    rows = read_csv(cash_flow_csv([ForecastLine("2026-10", "CNY", Decimal("1200.00"), 2)]))
    assert rows[1] == ["2026-10", "CNY", "1200.00", "2"]
