"""The rendered shape of a contract: what every output format (DOCX, HTML, redline) is built from.

Rendering clause bodies produces a `ContractDocument`; the DOCX and HTML writers only lay it out.
Keeping it plain data means the same version always yields the same document.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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
