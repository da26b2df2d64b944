"""Drafting and rendering each built-in template to DOCX, beside docxtpl filling an equivalent Word template.

Qiyue: `draft()` (validation, derived amounts, clause selection, sandboxed clause rendering) then
`render_docx()`, from the template's own sample variables. docxtpl: a Word template with the same
paragraphs, tables and header as the drafted document (built here once per template, with
python-docx, on Qiyue's reference.docx so both start from the same styles), filled with the same
text and saved. docxtpl does no drafting: the gap between the two is what validation and clause
logic cost over plain templating.
"""
from __future__ import annotations

import io
import time

from docx import Document

from bench.harness import latency_figures
from bench.report import Row
from services.contracts.adapters.docx_writer import _reference_bytes, header_text, render_docx, signature_lines
from services.contracts.domain.document import ContractDocument, Paragraph
from services.contracts.domain.drafting import draft
from services.contracts.adapters.library_files import load_library

LANGUAGES = ("zh-CN", "en")


def run(env) -> dict:
    library = load_library()
    iterations = 3 if env.quick else 30
    rows, figures = [], {}
    for key in library.template_keys:
        template = library.template(key)
        for language in LANGUAGES:
            variables = dict(template.sample_variables)
            ours, render_only = [], []
            for _ in range(iterations):
                t0 = time.perf_counter()
                document = draft(template, language, variables).document
                t1 = time.perf_counter()
                ours_bytes = render_docx(document)
                t2 = time.perf_counter()
                ours.append(t2 - t0)
                render_only.append(t2 - t1)
            word_template, context = equivalent_template(document)
            theirs = []
            for _ in range(iterations):
                t0 = time.perf_counter()
                their_bytes = fill(word_template, context)
                theirs.append(time.perf_counter() - t0)
            name = f"{key} {language}"
            figures[name] = {"qiyue_draft_and_docx": latency_figures(ours, 50, 95),
                             "qiyue_docx_only": latency_figures(render_only, 50, 95),
                             "docxtpl_fill": latency_figures(theirs, 50, 95),
                             "articles": len(document.articles), "tables": len(_tables(document)),
                             "characters": _characters(document), "docx_bytes": len(ours_bytes),
                             "docxtpl_bytes": len(their_bytes)}
            for p in (50, 95):
                rows.append(Row("drafting", f"{name}: draft + DOCX p{p}",
                                figures[name]["qiyue_draft_and_docx"][f"p{p}_ms"],
                                figures[name]["docxtpl_fill"][f"p{p}_ms"], "docxtpl fill", "ms",
                                f"DOCX alone p{p} {figures[name]['qiyue_docx_only'][f'p{p}_ms']} ms"
                                if p == 50 else f"{figures[name]['characters']:,} chars, "
                                                f"{figures[name]['tables']} tables"))
    return {"iterations": iterations, "templates": figures, "rows": rows}


# --- the equivalent Word template --------------------------------------------------------------

def _blocks(document: ContractDocument):
    """Every block in reading order, headings as paragraphs."""
    yield Paragraph(document.title)
    yield from document.preamble
    for article in document.articles:
        yield Paragraph(article.heading)
        yield from article.blocks
    yield from document.closing


def _tables(document: ContractDocument) -> list:
    return [b for b in _blocks(document) if not isinstance(b, Paragraph)]


def _characters(document: ContractDocument) -> int:
    count = 0
    for block in _blocks(document):
        if isinstance(block, Paragraph):
            count += len(block.text)
        else:
            count += sum(len(c) for row in (block.header, *block.rows) for c in row)
    return count


def equivalent_template(document: ContractDocument) -> tuple[bytes, dict]:
    """A docxtpl template with one placeholder per paragraph and a row loop per table, and its context."""
    word = Document(io.BytesIO(_reference_bytes()))
    word.sections[0].header.paragraphs[0].text = "{{ header }}"
    paragraphs, tables = [], []
    for block in _blocks(document):
        if isinstance(block, Paragraph):
            word.add_paragraph(f"{{{{ p[{len(paragraphs)}] }}}}")
            paragraphs.append(block.text)
            continue
        columns, k = len(block.header), len(tables)
        table = word.add_table(rows=4, cols=columns)
        for j in range(columns):
            table.cell(0, j).text = f"{{{{ t[{k}].header[{j}] }}}}"
            table.cell(2, j).text = f"{{{{ row[{j}] }}}}"
        table.cell(1, 0).text = f"{{%tr for row in t[{k}].rows %}}"
        table.cell(3, 0).text = "{%tr endfor %}"
        tables.append({"header": list(block.header), "rows": [list(r) for r in block.rows]})
    signatures = [signature_lines(document.language, b) for b in document.signature_blocks]
    table = word.add_table(rows=1, cols=len(signatures))
    for i, lines in enumerate(signatures):
        cell = table.cell(0, i)
        cell.text = f"{{{{ s[{i}][0] }}}}"
        for n in range(1, len(lines)):
            cell.add_paragraph(f"{{{{ s[{i}][{n}] }}}}")
    buffer = io.BytesIO()
    word.save(buffer)
    context = {"header": header_text(document.language, document.number, document.version),
               "p": paragraphs, "t": tables, "s": signatures}
    return buffer.getvalue(), context


def fill(word_template: bytes, context: dict) -> bytes:
    from docxtpl import DocxTemplate

    template = DocxTemplate(io.BytesIO(word_template))
    template.render(context, autoescape=True)
    out = io.BytesIO()
    template.save(out)
    return out.getvalue()
