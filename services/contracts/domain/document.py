"""The rendered shape of a contract: what every output format (DOCX, HTML, redline) is built from.

Rendering clause bodies produces a `ContractDocument`; the DOCX and HTML writers only lay it out.
Keeping it plain data means the same version always yields the same document.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Union


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Union[Paragraph, Table]


@dataclass(frozen=True)
class Article:
    """One numbered article (第一条 / 1.) rendered from one clause slot."""
    clause_key: str
    heading: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class SignatureBlock:
    party_label: str                     # 甲方 / Party A (Client)
    name: str
    lines: tuple[str, ...] = ("授权代表（签字）：", "日期：", "（盖章）")


@dataclass(frozen=True)
class ContractDocument:
    language: Literal["zh-CN", "en"]
    title: str
    number: str                          # contract number shown in the header
    version: int
    preamble: tuple[Block, ...] = ()
    articles: tuple[Article, ...] = ()
    signature_blocks: tuple[SignatureBlock, ...] = ()
    closing: tuple[Block, ...] = field(default_factory=tuple)


# --- quotation marks ----------------------------------------------------------------------------
# One style in a document, whatever language: curly double quotes (“ ”), as Chinese typesetting
# requires and English contracts commonly use. Clause bodies and custom wording may type straight
# ones ("乙方人员"); they are paired in order within each paragraph or table cell.

def curly_quotes(text: str) -> str:
    pieces = text.split('"')
    if len(pieces) == 1:
        return text
    return pieces[0] + "".join(("“" if i % 2 else "”") + piece for i, piece in enumerate(pieces[1:], 1))


def _typeset_block(block: Block) -> Block:
    if isinstance(block, Paragraph):
        return Paragraph(curly_quotes(block.text))
    return Table(tuple(map(curly_quotes, block.header)),
                 tuple(tuple(map(curly_quotes, row)) for row in block.rows))


def typeset(document: "ContractDocument") -> "ContractDocument":
    """The document with one style of quotation marks throughout."""
    blocks = lambda bs: tuple(map(_typeset_block, bs))   # noqa: E731
    return replace(document, title=curly_quotes(document.title), preamble=blocks(document.preamble),
                   articles=tuple(replace(a, heading=curly_quotes(a.heading), blocks=blocks(a.blocks))
                                  for a in document.articles),
                   closing=blocks(document.closing))


_CHINESE_DIGITS = "零一二三四五六七八九"


def chinese_counting(number: int) -> str:
    """Chinese numerals as used for article numbers: 1 一, 10 十, 11 十一, 20 二十, 105 一百零五."""
    if not 0 < number < 10000:
        raise ValueError(f"article number out of range: {number}")
    units = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))
    text, pending_zero = "", False
    for value, unit in units:
        digit = number // value % 10
        if digit == 0:
            pending_zero = bool(text)
            continue
        if pending_zero:
            text += "零"
            pending_zero = False
        text += ("" if digit == 1 and value == 10 and not text else _CHINESE_DIGITS[digit]) + unit
    return text
