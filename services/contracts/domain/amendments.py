"""The amendment (补充协议): a document in the contract's language that lists what a change did.

It is built from the two rendered versions and the change's delta, never typed: article by
article (modified, added, removed, in the numbering of the version it amends), and the price
change in figures and in words, so it cannot disagree with the amended contract.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from services.contracts.domain.amount_words import english_amount_words, rmb_uppercase
from services.contracts.domain.document import Article, Block, ContractDocument, Paragraph, chinese_counting, typeset
from services.contracts.domain.formatters import format_date


def article_label(number: int, language: str) -> str:
    """第十一条 in zh-CN (chineseCounting, as the DOCX numbering shows it), Article 11 in en."""
    return f"第{chinese_counting(number)}条" if language == "zh-CN" else f"Article {number}"


@dataclass(frozen=True)
class AmendmentFacts:
    """What the amendment document names besides the two versions."""
    number: int                 # 补充协议 No. (the contract's n-th amendment)
    change_request: str         # e.g. CR-3
    contract_number: str
    contract_title: str
    base_version: int
    signed_on: str | None       # the date the amended contract was signed, ISO
    currency: str = "CNY"


_WORDS = {
    "zh-CN": {
        "title": "《{title}》补充协议（第{n}号）",
        "preamble": "鉴于甲乙双方{signed}签订了《{title}》（合同编号：{number}，以下简称“原合同”），"
                    "现根据原合同变更控制条款及变更申请{cr}，经双方协商一致，就原合同的变更达成如下补充协议：",
        "signed": "于{date}", "modified": "原合同{label}（{heading}）修改为：",
        "added": "原合同增加{label}（{heading}），内容如下：", "removed": "删除原合同{label}（{heading}）。",
        "price": "合同总价由{old}（大写：{old_words}）调整为{new}（大写：{new_words}），{direction}{delta}（大写：{delta_words}）。",
        "up": "增加", "down": "减少", "changes": "变更内容", "price_heading": "合同价款", "general": "其他",
        "closing": ("本补充协议是原合同不可分割的组成部分，与原合同具有同等法律效力；本补充协议与原合同约定不一致的，"
                    "以本补充协议为准；本补充协议未作约定的，仍按原合同执行。",
                    "本补充协议自双方授权代表签字并加盖公章之日起生效，一式两份，双方各执一份。"),
        "none": "本次变更不涉及原合同条款文字的修改。",
    },
    "en": {
        "title": "Amendment No. {n} to the {title}",
        "preamble": "Whereas the parties{signed} entered into the {title} (Contract No. {number}, the "
                    "“Agreement”), the parties, under the change control clause of the Agreement and change "
                    "request {cr}, agree to amend the Agreement as follows:",
        "signed": " on {date}", "modified": "{label} ({heading}) of the Agreement is replaced by the following:",
        "added": "The following {label} ({heading}) is added to the Agreement:",
        "removed": "{label} ({heading}) of the Agreement is deleted.",
        "price": "The contract price is changed from {old} ({old_words}) to {new} ({new_words}), "
                 "{direction} {delta} ({delta_words}).",
        "up": "an increase of", "down": "a decrease of", "changes": "Changes", "price_heading": "Contract price",
        "general": "General",
        "closing": ("This Amendment forms an integral part of the Agreement and has the same legal force. Where it "
                    "differs from the Agreement, this Amendment prevails; in all other respects the Agreement "
                    "remains unchanged.",
                    "This Amendment takes effect when signed by the authorised representatives and sealed by both "
                    "parties, in two counterparts, one for each party."),
        "none": "This change does not modify the wording of any article of the Agreement.",
    },
}


def amendment_document(old: ContractDocument, new: ContractDocument, delta: Mapping[str, Any],
                       facts: AmendmentFacts) -> ContractDocument:
    words = _WORDS[new.language]
    title = words["title"].format(title=facts.contract_title, n=facts.number)
    # the date in prose as the contract prints dates (2026年12月2日 / 2 December 2026), never ISO
    signed = words["signed"].format(date=format_date(facts.signed_on, new.language)) if facts.signed_on else ""
    preamble = (Paragraph(words["preamble"].format(signed=signed, title=facts.contract_title,
                                                   number=facts.contract_number, cr=facts.change_request)),)
    articles = [Article("amendment.changes", words["changes"], tuple(_article_changes(old, new)) or
                        (Paragraph(words["none"]),))]
    if "total_price" in delta:
        articles.append(Article("amendment.price", words["price_heading"],
                                (_price_sentence(delta["total_price"], new.language, facts.currency),)))
    articles.append(Article("amendment.general", words["general"], tuple(Paragraph(t) for t in words["closing"])))
    return typeset(ContractDocument(language=new.language, title=title, number=facts.contract_number,
                                    version=new.version, preamble=preamble, articles=tuple(articles),
                                    signature_blocks=new.signature_blocks))


def _article_changes(old: ContractDocument, new: ContractDocument) -> list[Block]:
    """Each article that differs, in the order of the amended version, then the removed ones."""
    words = _WORDS[new.language]
    before = {a.clause_key: (i, a) for i, a in enumerate(old.articles, 1)}
    after = {a.clause_key: (i, a) for i, a in enumerate(new.articles, 1)}
    blocks: list[Block] = []
    for key, (number, article) in after.items():
        if key not in before:
            blocks.append(Paragraph(words["added"].format(label=article_label(number, new.language),
                                                          heading=article.heading)))
            blocks.extend(article.blocks)
        elif before[key][1].blocks != article.blocks:
            old_number = before[key][0]
            blocks.append(Paragraph(words["modified"].format(label=article_label(old_number, new.language),
                                                             heading=before[key][1].heading)))
            blocks.extend(article.blocks)
    for key, (number, article) in before.items():
        if key not in after:
            blocks.append(Paragraph(words["removed"].format(label=article_label(number, new.language),
                                                            heading=article.heading)))
    return blocks


def _price_sentence(change: Mapping[str, str], language: str, currency: str) -> Paragraph:
    old, new = Decimal(change["from"]), Decimal(change["to"])
    delta = new - old
    figures = (lambda a: f"人民币{a:,.2f}元") if language == "zh-CN" else (lambda a: f"{currency} {a:,.2f}")
    in_words = (lambda a: rmb_uppercase(a)) if language == "zh-CN" else (lambda a: english_amount_words(a, currency))
    words = _WORDS[language]
    return Paragraph(words["price"].format(
        old=figures(old), old_words=in_words(old), new=figures(new), new_words=in_words(new),
        direction=words["up"] if delta >= 0 else words["down"], delta=figures(abs(delta)),
        delta_words=in_words(abs(delta))))

