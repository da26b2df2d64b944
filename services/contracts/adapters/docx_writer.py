"""Lay a ContractDocument out as a Word document on the house reference document.

All typography (fonts, East-Asian language, sizes, article numbering, table borders, the space
above a paragraph that follows a table) lives in reference.docx at style level; this module only
places content, picks the language, and sets what depends on where a paragraph sits: the last
article and the closing line keep with the signature blocks, whose rows never split.
The same ContractDocument always yields byte-identical DOCX bytes, so a stored version can be
checksummed and re-rendered to prove it has not changed.
"""
from __future__ import annotations

import functools
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Literal, Sequence

import docx
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from services.contracts.domain.document import Block, ContractDocument, Paragraph, SignatureBlock, Table

REFERENCE_DOCX = Path(__file__).with_name("reference.docx")
# numIds of the article numbering definitions in reference.docx (第%1条 / %1.).
ARTICLE_NUMBERING = {"zh-CN": 1, "en": 2}
# A rendered contract is a function of its content alone, so its metadata carries no clock time.
FIXED_TIMESTAMP = datetime(2000, 1, 1, tzinfo=timezone.utc)
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)

Op = Literal["equal", "insert", "delete"]
Segment = tuple[Op, str]


class Style:
    """Paragraph and table style ids defined in reference.docx."""
    TITLE = "Title"
    ARTICLE = "ArticleHeading"
    BODY = "Normal"
    BODY_AFTER_TABLE = "BodyAfterTable"
    TABLE_HEADING = "TableHeading"
    TABLE_TEXT = "TableText"
    SIGNATURE = "Signature"
    HEADER = "Header"
    FOOTER = "Footer"
    CONTRACT_TABLE = "ContractTable"
    SIGNATURE_TABLE = "SignatureTable"


@dataclass(frozen=True)
class _Wording:
    header: str
    page_of: tuple[str, str, str]   # text around the PAGE and NUMPAGES fields
    signatory: str
    word_lang: str


_WORDING = {
    "zh-CN": _Wording("合同编号：{number}　　版本：V{version}", ("第 ", " 页 共 ", " 页"), "{label}：{name}", "zh-CN"),
    "en": _Wording("Contract No. {number}    Version {version}", ("Page ", " of ", ""), "{label}: {name}", "en-US"),
}


@dataclass(frozen=True)
class Revision:
    """Who made the tracked changes of a redline, and when."""
    author: str
    date: datetime

    def stamp(self) -> str:
        date = self.date if self.date.tzinfo is None else self.date.astimezone(timezone.utc)
        return date.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


@dataclass(frozen=True)
class TrackedParagraph:
    """Paragraph content as diff segments; `mark` tracks the paragraph mark itself, so an
    inserted or deleted paragraph disappears completely when its change is rejected or accepted."""
    segments: tuple[Segment, ...]
    mark: Op = "equal"


@dataclass(frozen=True)
class TrackedRow:
    cells: tuple[tuple[Segment, ...], ...]
    state: Op = "equal"


def plain(text: str) -> tuple[Segment, ...]:
    return (("equal", text),) if text else ()


def header_text(language: str, number: str, version: str | int) -> str:
    return _wording(language).header.format(number=number, version=version)


def signature_lines(language: str, block: SignatureBlock) -> list[str]:
    return [_wording(language).signatory.format(label=block.party_label, name=block.name), *block.lines]


def render_docx(doc: ContractDocument) -> bytes:
    composer = ContractDocxComposer(doc.language, header_text(doc.language, doc.number, doc.version))
    composer.add_paragraph(Style.TITLE, TrackedParagraph(plain(doc.title)))
    composer.add_blocks(doc.preamble)
    for article in doc.articles:
        composer.add_paragraph(Style.ARTICLE, TrackedParagraph(plain(article.heading)))
        composer.add_blocks(article.blocks)
    composer.add_blocks(doc.closing)
    if doc.signature_blocks:
        composer.add_signature_table(
            [[TrackedParagraph(plain(line)) for line in signature_lines(doc.language, block)]
             for block in doc.signature_blocks]
        )
    return composer.to_bytes(title=doc.title, number=doc.number, version=str(doc.version))


class ContractDocxComposer:
    """Appends contract content to a copy of the reference document.

    Content is given as diff segments so the redline writer can reuse the exact layout of a
    plain render; plain content is a single "equal" segment.
    """

    def __init__(self, language: str, header: str, revision: Revision | None = None) -> None:
        self.language = language
        self._wording = _wording(language)
        self._revision = revision
        self._next_revision_id = 1
        self._document = docx.Document(io.BytesIO(_reference_bytes()))
        self._use_language()
        self._write_header_and_footer(header)
        if revision is not None:
            self._turn_on_track_changes()

    # -- body ---------------------------------------------------------------------------------

    def add_blocks(self, blocks: Iterable[Block]) -> None:
        for block in blocks:
            if isinstance(block, Paragraph):
                self.add_paragraph(Style.BODY, TrackedParagraph(plain(block.text)))
            else:
                self.add_table(table_rows(block))

    def add_paragraph(self, style: str, paragraph: TrackedParagraph) -> None:
        p = self._document.add_paragraph()._p
        if style == Style.BODY and _follows_table(p):
            style = Style.BODY_AFTER_TABLE    # otherwise the text sits on the table's bottom border
        self._fill_paragraph(p, style, paragraph)

    def add_table(self, rows: Sequence[TrackedRow]) -> None:
        """A bordered table whose first row is the header, repeated on every page."""
        columns = max(len(row.cells) for row in rows)
        table = self._new_table(len(rows), columns, Style.CONTRACT_TABLE)
        for index, (row, spec) in enumerate(zip(table.rows, rows)):
            style = Style.TABLE_HEADING if index == 0 else Style.TABLE_TEXT
            trPr = row._tr.get_or_add_trPr()
            if index == 0:
                trPr.append(OxmlElement("w:tblHeader"))
            self._mark(trPr, spec.state)
            for cell, segments in zip(row.cells, spec.cells):
                self._fill_paragraph(cell.paragraphs[0]._p, style, TrackedParagraph(segments))

    def add_signature_table(self, cells: Sequence[Sequence[TrackedParagraph]],
                            row_states: Sequence[Op] = ()) -> None:
        """Signature blocks side by side, two to a row, on a borderless table.

        The signature blocks never stand alone on the last page: the body paragraphs above them
        back to the last article heading (the last article and the closing line) keep with them,
        and no row breaks across a page (the Signature style keeps the rows with each other)."""
        _keep_with_next(self._paragraphs_above_signatures())
        row_count = (len(cells) + 1) // 2
        table = self._new_table(row_count, 2, Style.SIGNATURE_TABLE)
        for row in table.rows:
            row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
        for index, paragraphs in enumerate(cells):
            row = table.rows[index // 2]
            cell = row.cells[index % 2]
            for position, paragraph in enumerate(paragraphs):
                p = cell.paragraphs[0]._p if position == 0 else cell.add_paragraph()._p
                self._fill_paragraph(p, Style.SIGNATURE, paragraph)
        if len(cells) % 2:
            table.rows[-1].cells[1].paragraphs[0]._p.style = Style.SIGNATURE
        for row, state in zip(table.rows, row_states):
            self._mark(row._tr.get_or_add_trPr(), state)

    # -- output -------------------------------------------------------------------------------

    def to_bytes(self, *, title: str, number: str, version: str) -> bytes:
        if self._revision is not None:
            body = self._document.element.body
            for container in (body, *body.iter(qn("w:tc"))):
                _keep_paragraph_joins_off_tables(container)
        properties = self._document.core_properties
        properties.title = title
        properties.identifier = number
        properties.version = version
        properties.language = self._wording.word_lang
        properties.created = FIXED_TIMESTAMP
        properties.modified = self._revision.date if self._revision else FIXED_TIMESTAMP
        if self._revision:
            properties.last_modified_by = self._revision.author
        buffer = io.BytesIO()
        self._document.save(buffer)
        return repack_deterministically(buffer.getvalue())

    # -- helpers ------------------------------------------------------------------------------

    def _paragraphs_above_signatures(self) -> list:
        """Body paragraphs directly above the end of the body, up to the last heading or table."""
        found = []
        for block in reversed([b for b in self._document.element.body if b.tag in (qn("w:p"), qn("w:tbl"))]):
            if block.tag != qn("w:p") or block.style not in (Style.BODY, Style.BODY_AFTER_TABLE):
                break
            found.append(block)
        return found

    def _new_table(self, rows: int, columns: int, style: str):
        table = self._document.add_table(rows=rows, cols=columns)
        table._tbl.tblPr.style = style
        return table

    def _fill_paragraph(self, p, style: str, paragraph: TrackedParagraph) -> None:
        p.style = style
        for op, text in paragraph.segments:
            run = _run(text, deleted=op == "delete")
            if op == "equal":
                p.append(run)
            else:
                change = self._change_element(op)
                change.append(run)
                p.append(change)
        if paragraph.mark != "equal":
            rPr = OxmlElement("w:rPr")   # last child of w:pPr, as the schema orders it
            self._mark(rPr, paragraph.mark)
            p.get_or_add_pPr().append(rPr)

    def _mark(self, parent, state: Op) -> None:
        if state != "equal":
            parent.append(self._change_element(state))

    def _change_element(self, op: Op):
        if self._revision is None:
            raise ValueError("tracked changes need a Revision (author and date)")
        element = OxmlElement("w:ins" if op == "insert" else "w:del")
        element.set(qn("w:id"), str(self._next_revision_id))
        element.set(qn("w:author"), self._revision.author)
        element.set(qn("w:date"), self._revision.stamp())
        self._next_revision_id += 1
        return element

    def _use_language(self) -> None:
        styles = self._document.styles.element
        lang = styles.find(f"{qn('w:docDefaults')}/{qn('w:rPrDefault')}/{qn('w:rPr')}/{qn('w:lang')}")
        lang.set(qn("w:val"), self._wording.word_lang)
        (num_id,) = styles.xpath(f'w:style[@w:styleId="{Style.ARTICLE}"]/w:pPr/w:numPr/w:numId')
        num_id.set(qn("w:val"), str(ARTICLE_NUMBERING[self.language]))

    def _write_header_and_footer(self, header: str) -> None:
        section = self._document.sections[0]
        section.header.is_linked_to_previous = False
        header_p = section.header.paragraphs[0]._p
        header_p.style = Style.HEADER
        header_p.append(_run(header))
        section.footer.is_linked_to_previous = False
        footer_p = section.footer.paragraphs[0]._p
        footer_p.style = Style.FOOTER
        before, between, after = self._wording.page_of
        for piece in (_run(before), _field("PAGE"), _run(between), _field("NUMPAGES"), _run(after)):
            if len(piece):
                footer_p.append(piece)

    def _turn_on_track_changes(self) -> None:
        # Edits the counterparty makes to the redline are tracked too.
        settings = self._document.settings.element
        settings.find(qn("w:zoom")).addnext(OxmlElement("w:trackRevisions"))


def _follows_table(p) -> bool:
    previous = p.getprevious()
    return previous is not None and previous.tag == qn("w:tbl")


def _keep_with_next(paragraphs: Iterable) -> None:
    """Keep each paragraph whole and on the page of the one after it."""
    for p in paragraphs:
        pPr = p.get_or_add_pPr()
        # python-docx inserts each in its schema position, so the pPr stays valid
        pPr.keepNext_val = True
        pPr.keepLines_val = True


def _keep_paragraph_joins_off_tables(container) -> None:
    """Move tracked paragraph marks away from a table or the end of a cell or of the body.

    A tracked paragraph mark means "this paragraph joins the next one" once the change is
    resolved. Directly before a table, or at the end of a cell or of the body, there is no next
    paragraph: LibreOffice then leaves an empty (and possibly numbered) paragraph behind. Such a
    run of added or removed paragraphs is joined to the paragraph above it instead: each mark
    moves up by one and the last paragraph keeps a plain mark. Accepting and rejecting still give
    the right text, and the joined paragraph keeps the formatting of the surviving paragraph above.
    """
    blocks = [child for child in container if child.tag in (qn("w:p"), qn("w:tbl"))]
    run: list = []
    for block in [*blocks, None]:
        if block is not None and block.tag == qn("w:p") and _tracked_mark(block) is not None:
            run.append(block)
            continue
        if run and (block is None or block.tag == qn("w:tbl")):
            _shift_marks_up(run)
        run = []


def _shift_marks_up(run: list) -> None:
    above = run[0].getprevious()
    chain = [above, *run] if above is not None and above.tag == qn("w:p") and _tracked_mark(above) is None else run
    if len(chain) < 2:
        return      # nothing to join to (a lone changed paragraph between two tables)
    marks = [_tracked_mark(p) for p in chain[1:]]
    for paragraph, mark in zip(chain, marks):
        rPr = paragraph.get_or_add_pPr().find(qn("w:rPr"))
        if rPr is None:
            rPr = OxmlElement("w:rPr")
            paragraph.get_or_add_pPr().append(rPr)
        rPr.append(mark)    # moving an lxml element detaches it from its old paragraph


def _tracked_mark(paragraph):
    marks = paragraph.xpath("./w:pPr/w:rPr/w:ins | ./w:pPr/w:rPr/w:del")
    return marks[0] if marks else None


def table_rows(table: Table) -> list[TrackedRow]:
    return [TrackedRow(tuple(plain(cell) for cell in row)) for row in (table.header, *table.rows)]


def repack_deterministically(data: bytes) -> bytes:
    """Rewrite a DOCX zip with a fixed entry order and fixed timestamps."""
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, \
            zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        names = sorted(source.namelist(), key=lambda name: (name != "[Content_Types].xml", name))
        for name in names:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0          # the same bytes whichever OS renders it
            info.external_attr = 0
            target.writestr(info, source.read(name))
    return output.getvalue()


@functools.cache
def _reference_bytes() -> bytes:
    return REFERENCE_DOCX.read_bytes()


def _wording(language: str) -> _Wording:
    try:
        return _WORDING[language]
    except KeyError:
        raise ValueError(f"unsupported contract language: {language!r}") from None


# Characters XML 1.0 cannot carry; a stray one in clause text must not break the whole document.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _run(text: str, deleted: bool = False):
    run = OxmlElement("w:r")
    text_tag = "w:delText" if deleted else "w:t"
    for piece in re.split(r"(\t|\n)", _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))):
        if piece == "\t":
            run.append(OxmlElement("w:tab"))
        elif piece == "\n":
            run.append(OxmlElement("w:br"))
        elif piece:
            t = OxmlElement(text_tag)
            t.set(qn("xml:space"), "preserve")
            t.text = piece
            run.append(t)
    return run


def _field(instruction: str):
    """A simple field (PAGE, NUMPAGES); the cached result '1' shows until the reader updates it."""
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), f" {instruction} \\* MERGEFORMAT ")
    field.append(_run("1"))
    return field
