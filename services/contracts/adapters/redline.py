"""A Word redline between two versions of a contract: one DOCX with real tracked changes.

Accepting every change gives the new version and rejecting every change gives the old one, so a
counterparty can review the edits in Word or LibreOffice with the usual Accept/Reject buttons.

Articles are matched by clause_key (a renumbered article is still the same clause), blocks inside
an article by content, and text by tokens (characters for Chinese, words for English).
"""
from __future__ import annotations

from datetime import datetime
from difflib import SequenceMatcher
from itertools import zip_longest
from typing import Callable, Hashable, Iterator, Optional, Sequence, TypeVar

from services.contracts.adapters.docx_writer import (
    ContractDocxComposer,
    Op,
    Revision,
    Style,
    TrackedParagraph,
    TrackedRow,
    header_text,
    plain,
    signature_lines,
    table_rows,
)
from services.contracts.domain.document import Article, Block, ContractDocument, Paragraph, SignatureBlock, Table
from services.contracts.domain.text_diff import diff_tokens

T = TypeVar("T")
Pair = tuple[Optional[T], Optional[T]]


def render_redline_docx(old: ContractDocument, new: ContractDocument, author: str, date: datetime) -> bytes:
    if old.language != new.language:
        raise ValueError("a redline compares two versions in the same language")
    version = f"{old.version} → V{new.version}"
    composer = ContractDocxComposer(new.language, header_text(new.language, new.number, version),
                                    Revision(author, date))
    redline = _Redline(composer, new.language)
    redline.paragraph(Style.TITLE, old.title, new.title)
    redline.blocks(old.preamble, new.preamble)
    redline.articles(old.articles, new.articles)
    redline.blocks(old.closing, new.closing)
    redline.signatures(old.signature_blocks, new.signature_blocks)
    return composer.to_bytes(title=new.title, number=new.number, version=str(new.version))


class _Redline:
    def __init__(self, composer: ContractDocxComposer, language: str) -> None:
        self._composer = composer
        self._language = language

    def paragraph(self, style: str, old: str | None, new: str | None) -> None:
        self._composer.add_paragraph(style, self._tracked(old, new))

    def blocks(self, old: Sequence[Block], new: Sequence[Block]) -> None:
        for old_block, new_block in _pair(old, new, key=_block_key, kind=type):
            self._block(old_block, new_block)

    def articles(self, old: Sequence[Article], new: Sequence[Article]) -> None:
        # Different clause_keys are different clauses: never diff one's text against another's.
        for old_article, new_article in _pair(old, new, key=lambda a: a.clause_key):
            self.paragraph(Style.ARTICLE, old_article and old_article.heading, new_article and new_article.heading)
            self.blocks(old_article.blocks if old_article else (), new_article.blocks if new_article else ())

    def signatures(self, old: Sequence[SignatureBlock], new: Sequence[SignatureBlock]) -> None:
        if not old and not new:
            return
        pairs = list(zip_longest(old, new))
        cells = [self._signature_cell(old_block, new_block) for old_block, new_block in pairs]
        row_states = [_row_state(pairs[index:index + 2]) for index in range(0, len(pairs), 2)]
        self._composer.add_signature_table(cells, row_states)

    # -- blocks -------------------------------------------------------------------------------

    def _block(self, old: Block | None, new: Block | None) -> None:
        if isinstance(old or new, Paragraph):
            self.paragraph(Style.BODY, old and old.text, new and new.text)
        else:
            self._table(old, new)

    def _table(self, old: Table | None, new: Table | None) -> None:
        if old is None or new is None:
            state: Op = "insert" if old is None else "delete"
            self._composer.add_table([_whole_row(row, state) for row in table_rows(old or new)])
            return
        if len(old.header) != len(new.header):
            # A reshaped table cannot be compared cell by cell: show it replaced.
            self._table(old, None)
            self._table(None, new)
            return
        rows = [self._row(old.header, new.header)]
        for old_row, new_row in _pair(old.rows, new.rows, key=lambda row: row, kind=len):
            rows.append(self._row(old_row, new_row))
        self._composer.add_table(rows)

    def _row(self, old: tuple[str, ...] | None, new: tuple[str, ...] | None) -> TrackedRow:
        if old is None or new is None:
            state: Op = "insert" if old is None else "delete"
            return _whole_row(TrackedRow(tuple(plain(cell) for cell in old or new)), state)
        return TrackedRow(tuple(tuple(diff_tokens(a, b, self._language)) for a, b in zip(old, new)))

    # -- paragraphs ---------------------------------------------------------------------------

    def _tracked(self, old: str | None, new: str | None) -> TrackedParagraph:
        if old is not None and new is not None:
            return TrackedParagraph(tuple(diff_tokens(old, new, self._language)))
        if new is not None:
            return TrackedParagraph((("insert", new),) if new else (), mark="insert")
        if old is not None:
            return TrackedParagraph((("delete", old),) if old else (), mark="delete")
        raise ValueError("a paragraph needs an old or a new text")

    def _signature_cell(self, old: SignatureBlock | None, new: SignatureBlock | None) -> list[TrackedParagraph]:
        old_lines = signature_lines(self._language, old) if old else []
        new_lines = signature_lines(self._language, new) if new else []
        return [self._tracked(a, b) for a, b in zip_longest(old_lines, new_lines)]


def _pair(old: Sequence[T], new: Sequence[T], key: Callable[[T], Hashable],
          kind: Callable[[T], Hashable] | None = None) -> Iterator[Pair]:
    """Align two sequences: matched items side by side, the rest as deletions and insertions.

    With `kind`, an edited stretch is compared item by item among items of the same kind
    (the 3rd paragraph of the old article against the 3rd of the new one) instead of being
    shown as deleted and retyped.
    """
    matcher = SequenceMatcher(None, [key(item) for item in old], [key(item) for item in new], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            yield from zip(old[i1:i2], new[j1:j2])
        elif tag == "replace" and kind is not None:
            yield from _pair(old[i1:i2], new[j1:j2], key=kind)
        else:
            yield from ((item, None) for item in old[i1:i2])
            yield from ((None, item) for item in new[j1:j2])


def _block_key(block: Block) -> Hashable:
    return ("paragraph", block.text) if isinstance(block, Paragraph) else ("table", block.header, block.rows)


def _whole_row(row: TrackedRow, state: Op) -> TrackedRow:
    return TrackedRow(tuple(tuple((state, text) for _, text in cell if text) for cell in row.cells), state)


def _row_state(pairs: Sequence[Pair]) -> Op:
    """A signature row is inserted or deleted only when every block in it is."""
    if all(old is None for old, _ in pairs):
        return "insert"
    if all(new is None for _, new in pairs):
        return "delete"
    return "equal"

