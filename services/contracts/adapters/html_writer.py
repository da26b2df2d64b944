"""A self-contained HTML preview of a ContractDocument (no external CSS, fonts or scripts).

Clause text comes from templates filled with user input, so every string is escaped: Jinja2
autoescaping is on for the whole template.
"""
from __future__ import annotations

import jinja2

from services.contracts.domain.document import ContractDocument, Table, chinese_counting


_TEMPLATE = """<!DOCTYPE html>
<html lang="{{ doc.language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.title }}</title>
<style>
body { font-family: "Times New Roman", "SimSun", "Songti SC", "Noto Serif CJK SC", serif;
       max-width: 48em; margin: 2em auto; padding: 0 1em; line-height: 1.7; color: #111; }
header.meta { text-align: right; font-size: .85em; color: #555; border-bottom: 1px solid #999; }
h1 { text-align: center; font-size: 1.6em; margin: 1.2em 0; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
h1, h2, th { font-family: "Times New Roman", "SimHei", "Heiti SC", "Noto Sans CJK SC", sans-serif; }
table.data { border-collapse: collapse; width: 100%; margin: .6em 0; }
table.data th, table.data td { border: 1px solid #444; padding: .25em .5em; text-align: left; }
table.data th { background: #e7e6e6; text-align: center; }
.signatures { display: flex; flex-wrap: wrap; gap: 2em; margin-top: 3em; }
.signatures section { flex: 1 1 40%; }
.signatures p { margin: .8em 0; }
</style>
</head>
<body>
<header class="meta">{{ header }}</header>
<h1>{{ doc.title }}</h1>
{% for block in doc.preamble %}{{ render_block(block) }}{% endfor %}
{% for article in doc.articles %}
<section class="article" id="article-{{ article.clause_key }}">
<h2>{{ article_label(loop.index) }} {{ article.heading }}</h2>
{% for block in article.blocks %}{{ render_block(block) }}{% endfor %}
</section>
{% endfor %}
{% for block in doc.closing %}{{ render_block(block) }}{% endfor %}
{% if doc.signature_blocks %}
<div class="signatures">
{% for signature in doc.signature_blocks %}
<section><p><strong>{{ signature.party_label }}</strong>{{ separator }}{{ signature.name }}</p>
{% for line in signature.lines %}<p>{{ line }}</p>{% endfor %}</section>
{% endfor %}
</div>
{% endif %}
</body>
</html>
"""

_BLOCK_MACROS = """{% macro render_block(block) -%}
{% if not is_table(block) %}<p>{{ block.text }}</p>
{% else %}<table class="data">
<thead><tr>{% for cell in block.header %}<th>{{ cell }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in block.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table>
{% endif %}
{%- endmacro %}"""

_environment = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
_environment.globals["is_table"] = lambda block: isinstance(block, Table)
_page = _environment.from_string(_BLOCK_MACROS + _TEMPLATE)

_WORDING = {
    "zh-CN": ("合同编号：{number}　版本：V{version}", "："),
    "en": ("Contract No. {number} · Version {version}", ": "),
}


def render_html(doc: ContractDocument) -> str:
    header, separator = _WORDING[doc.language]
    return _page.render(
        doc=doc,
        header=header.format(number=doc.number, version=doc.version),
        separator=separator,
        article_label=lambda n: article_label(n, doc.language),
    )


def article_label(number: int, language: str) -> str:
    """The label Word's article numbering shows: 第十一条 (chineseCounting) or 11."""
    if language == "zh-CN":
        return f"第{chinese_counting(number)}条"
    return f"{number}."
