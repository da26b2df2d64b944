"""The whole contract document assembled from a resolved template: the articles whose condition
holds, each clause's chosen position rendered (or custom wording, or omitted), the preamble
naming the parties and the signature blocks. Articles are numbered by the writers, not here.
"""
from __future__ import annotations

from typing import Any, Mapping

from services.contracts.domain.clause_text import evaluate_condition, plain_blocks, render_blocks
from services.contracts.domain.document import Article, ContractDocument, Paragraph, SignatureBlock, typeset
from services.contracts.domain.templates import ResolvedTemplate

_WORDING = {
    "zh-CN": {"client": "甲方", "vendor": "乙方", "project": "项目名称", "closing": "（以下无正文）",
              "lines": ("授权代表（签字）：", "日期：", "（盖章）"), "sep": "："},
    "en": {"client": "Party A (Client)", "vendor": "Party B (Vendor)", "project": "Project",
           "closing": "(The remainder of this page is intentionally left blank.)",
           "lines": ("Authorised representative (signature):", "Date:", "(Company seal)"), "sep": ": "},
}


def render_document(template: ResolvedTemplate, language: str, values: Mapping[str, Any],
                    choices: Mapping[str, Any], *, version: int = 1) -> ContractDocument:
    """The draft as a document. `values` are the parsed and derived variables; `choices` maps a
    clause key to a `PositionChoice` (absent = the standard position)."""
    wording = _WORDING[language]
    articles = []
    for article in template.articles:
        where = f"template {template.key}, clause {article.clause_key}"
        if article.slot.when and not evaluate_condition(article.slot.when, values, where + " (when)"):
            continue
        choice = choices.get(article.clause_key)
        if choice is not None and choice.kind == "omitted":
            continue
        if choice is not None and choice.kind == "custom":
            blocks = plain_blocks(choice.text[language])
        else:
            position = article.clause_version.position(choice.key if choice is not None else None)
            blocks = render_blocks(position.body[language], language, values, f"{where}, position {position.key}",
                                   template.row_labels(language))
        articles.append(Article(article.clause_key, article.heading(language), blocks))
    client, vendor = values["client"], values["vendor"]
    sep = wording["sep"]
    return typeset(ContractDocument(
        language=language, title=template.title[language], number=values["contract_number"], version=version,
        preamble=(Paragraph(f"{wording['project']}{sep}{values['project_name']}"),
                  Paragraph(f"{wording['client']}{sep}{client.name}"),
                  Paragraph(f"{wording['vendor']}{sep}{vendor.name}")),
        articles=tuple(articles),
        signature_blocks=(SignatureBlock(wording["client"], client.name, wording["lines"]),
                          SignatureBlock(wording["vendor"], vendor.name, wording["lines"])),
        closing=(Paragraph(wording["closing"]),),
    ))
