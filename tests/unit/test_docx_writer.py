"""DOCX and HTML rendering of a ContractDocument: layout, Chinese typography, determinism."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from datetime import datetime, timezone

import docx
import pytest
from lxml import etree

from services.contracts.adapters.docx_writer import REFERENCE_DOCX, render_docx
from services.contracts.adapters.html_writer import article_label, chinese_counting, render_html
from services.contracts.adapters.make_reference_docx import build_reference_docx
from services.contracts.domain.document import Article, Paragraph, SignatureBlock
from tests.office_helpers import NS, body, paragraph_text, read_part, sample_en, sample_zh, w


@pytest.fixture(scope="module")
def zh_docx() -> bytes:
    return render_docx(sample_zh())


@pytest.fixture(scope="module")
def en_docx() -> bytes:
    return render_docx(sample_en())


def xml(docx_bytes: bytes, part: str) -> etree._Element:
    return etree.fromstring(read_part(docx_bytes, part))


def style_of(paragraph: etree._Element) -> str | None:
    style = paragraph.find("w:pPr/w:pStyle", NS)
    return None if style is None else style.get(w("val"))


def test_python_docx_reopens_the_document_with_title_and_articles(zh_docx):
    document = docx.Document(io.BytesIO(zh_docx))
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == "软件开发外包服务合同"
    assert document.paragraphs[0].style.name == "Title"
    headings = [p.text for p in document.paragraphs if p.style.name == "Article Heading"]
    assert headings == [a.heading for a in sample_zh().articles]
    assert "（以下无正文）" in texts
    assert document.core_properties.title == "软件开发外包服务合同"


def test_header_shows_contract_number_and_version(zh_docx, en_docx):
    zh_header = docx.Document(io.BytesIO(zh_docx)).sections[0].header.paragraphs[0].text
    assert "QY-2024-0042" in zh_header and "V3" in zh_header and "合同编号" in zh_header
    en_header = docx.Document(io.BytesIO(en_docx)).sections[0].header.paragraphs[0].text
    assert "QY-2024-0043" in en_header and "Version 2" in en_header


@pytest.mark.parametrize("language, words", [("zh-CN", ["第 ", " 页 共 ", " 页"]), ("en", ["Page ", " of "])])
def test_footer_has_page_and_numpages_fields(zh_docx, en_docx, language, words):
    rendered = zh_docx if language == "zh-CN" else en_docx
    footer = xml(rendered, "word/footer1.xml")
    instructions = [f.get(w("instr")).split()[0] for f in footer.iter(w("fldSimple"))]
    assert instructions == ["PAGE", "NUMPAGES"]
    literal = [t.text for t in footer.iter(w("t")) if t.getparent().getparent().tag != w("fldSimple")]
    assert literal == words
    # The footer is wired to the section, so Word shows it on every page.
    assert body(rendered).find("w:sectPr/w:footerReference", NS) is not None


def test_chinese_fonts_and_language_are_set_on_styles(zh_docx):
    styles = xml(zh_docx, "word/styles.xml")
    defaults = styles.find("w:docDefaults/w:rPrDefault/w:rPr", NS)
    assert defaults.find("w:rFonts", NS).get(w("eastAsia")) == "SimSun"
    assert defaults.find("w:rFonts", NS).get(w("ascii")) == "Times New Roman"
    lang = defaults.find("w:lang", NS)
    assert (lang.get(w("val")), lang.get(w("eastAsia"))) == ("zh-CN", "zh-CN")
    for style_id in ("Title", "ArticleHeading", "TableHeading"):
        fonts = styles.find(f'w:style[@w:styleId="{style_id}"]/w:rPr/w:rFonts', NS)
        assert fonts.get(w("eastAsia")) == "SimHei", style_id
    assert styles.find('w:style[@w:styleId="Normal"]/w:rPr/w:rFonts', NS).get(w("eastAsia")) == "SimSun"


def test_english_document_sets_english_language(en_docx):
    lang = xml(en_docx, "word/styles.xml").find("w:docDefaults/w:rPrDefault/w:rPr/w:lang", NS)
    assert lang.get(w("val")) == "en-US"


@pytest.mark.parametrize("part", ["word/document.xml", "word/header1.xml", "word/footer1.xml"])
def test_no_run_carries_its_own_fonts_or_language(zh_docx, part):
    root = xml(zh_docx, part)
    assert root.xpath("//w:rFonts | //w:lang", namespaces=NS) == []
    assert not [e for e in root.iter() if w("eastAsia") in e.attrib]


def test_same_document_renders_to_identical_bytes(zh_docx):
    again = render_docx(sample_zh())
    assert again == zh_docx
    assert hashlib.sha256(again).hexdigest() == hashlib.sha256(zh_docx).hexdigest()
    assert render_docx(dataclasses.replace(sample_zh(), version=4)) != zh_docx


def test_zip_has_fixed_order_timestamps_and_metadata(zh_docx):
    with zipfile.ZipFile(io.BytesIO(zh_docx)) as archive:
        infos = archive.infolist()
    assert infos[0].filename == "[Content_Types].xml"
    assert [i.filename for i in infos[1:]] == sorted(i.filename for i in infos[1:])
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    properties = docx.Document(io.BytesIO(zh_docx)).core_properties
    assert properties.created == properties.modified == datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert not [a for e in body(zh_docx).iter() for a in e.attrib if "rsid" in a]


def unzipped(docx_bytes: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(docx_bytes)) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]


def test_committed_reference_docx_matches_its_generator():
    # Compared entry by entry: another zlib build may compress the same XML to other bytes.
    assert unzipped(build_reference_docx()) == unzipped(REFERENCE_DOCX.read_bytes()), \
        "regenerate it: python -m services.contracts.adapters.make_reference_docx"


@pytest.mark.parametrize("language, num_format, text", [("zh-CN", "chineseCounting", "第%1条"), ("en", "decimal", "%1.")])
def test_article_headings_use_word_numbering(zh_docx, en_docx, language, num_format, text):
    rendered = zh_docx if language == "zh-CN" else en_docx
    styles = xml(rendered, "word/styles.xml")
    num_id = styles.find('w:style[@w:styleId="ArticleHeading"]/w:pPr/w:numPr/w:numId', NS).get(w("val"))
    numbering = xml(rendered, "word/numbering.xml")
    abstract_id = numbering.find(f'w:num[@w:numId="{num_id}"]/w:abstractNumId', NS).get(w("val"))
    level = numbering.find(f'w:abstractNum[@w:abstractNumId="{abstract_id}"]/w:lvl[@w:ilvl="0"]', NS)
    assert level.find("w:numFmt", NS).get(w("val")) == num_format
    assert level.find("w:lvlText", NS).get(w("val")) == text
    assert level.find("w:start", NS).get(w("val")) == "1"
    headings = [p for p in body(rendered).findall("w:p", NS) if style_of(p) == "ArticleHeading"]
    assert len(headings) == 12
    # The number comes from the numbering, never typed into the heading text.
    assert not any(paragraph_text(p).startswith(("第", "1")) for p in headings)


def test_tables_have_header_row_and_borders_and_signatures_sit_side_by_side(zh_docx):
    tables = body(zh_docx).findall("w:tbl", NS)
    styles = [t.find("w:tblPr/w:tblStyle", NS).get(w("val")) for t in tables]
    assert styles == ["ContractTable", "ContractTable", "SignatureTable"]
    tranche = tables[0]
    rows = tranche.findall("w:tr", NS)
    assert [paragraph_text(c) for c in rows[0].findall("w:tc", NS)] == ["付款节点", "比例", "金额（元）", "付款条件"]
    assert rows[0].find("w:trPr/w:tblHeader", NS) is not None
    assert [paragraph_text(c) for c in rows[2].findall("w:tc", NS)][:2] == ["中期款", "40%"]
    style_xml = xml(zh_docx, "word/styles.xml")
    borders = style_xml.find('w:style[@w:styleId="ContractTable"]/w:tblPr/w:tblBorders', NS)
    assert {b.get(w("val")) for b in borders} == {"single"}
    no_borders = style_xml.find('w:style[@w:styleId="SignatureTable"]/w:tblPr/w:tblBorders', NS)
    assert {b.get(w("val")) for b in no_borders} == {"nil"}
    signature_cells = tables[2].findall("w:tr/w:tc", NS)
    assert len(tables[2].findall("w:tr", NS)) == 1 and len(signature_cells) == 2
    assert [paragraph_text(p) for p in signature_cells[1].findall("w:p", NS)] == [
        "乙方：杭州示例软件有限公司", "授权代表（签字）：", "日期：", "（盖章）"]
    assert tables[2].getnext().tag == w("sectPr"), "signatures close the document"


def _blocks(rendered: bytes) -> list[etree._Element]:
    return [b for b in body(rendered) if b.tag in (w("p"), w("tbl"))]


def test_a_paragraph_after_a_table_gets_space_above_it(zh_docx, en_docx):
    for rendered in (zh_docx, en_docx):
        blocks = _blocks(rendered)
        after_table = [b for prev, b in zip(blocks, blocks[1:]) if prev.tag == w("tbl") and b.tag == w("p")]
        assert after_table and all(style_of(p) == "BodyAfterTable" for p in after_table)
        others = [b for prev, b in zip(blocks, blocks[1:]) if prev.tag != w("tbl") and b.tag == w("p")]
        assert "BodyAfterTable" not in {style_of(p) for p in others}
    style = xml(zh_docx, "word/styles.xml").find('w:style[@w:styleId="BodyAfterTable"]', NS)
    assert style.find("w:basedOn", NS).get(w("val")) == "Normal"
    assert int(style.find("w:pPr/w:spacing", NS).get(w("before"))) >= 120


def test_signature_blocks_stay_together_and_with_the_last_article(zh_docx):
    blocks = _blocks(zh_docx)
    signatures = blocks[-1]
    assert signatures.find("w:tblPr/w:tblStyle", NS).get(w("val")) == "SignatureTable"
    assert all(row.find("w:trPr/w:cantSplit", NS) is not None for row in signatures.findall("w:tr", NS))
    signature_style = xml(zh_docx, "word/styles.xml").find('w:style[@w:styleId="Signature"]/w:pPr', NS)
    assert signature_style.find("w:keepNext", NS) is not None and signature_style.find("w:keepLines", NS) is not None
    # the last article's paragraphs and the closing line keep with the signatures, nothing earlier does
    last_heading = max(i for i, b in enumerate(blocks) if b.tag == w("p") and style_of(b) == "ArticleHeading")
    kept = blocks[last_heading + 1:-1]
    assert [paragraph_text(p) for p in kept] == [*(b.text for b in sample_zh().articles[-1].blocks), "（以下无正文）"]
    assert all(p.find("w:pPr/w:keepNext", NS) is not None and p.find("w:pPr/w:keepLines", NS) is not None
               for p in kept)
    assert not [b for b in blocks[:last_heading] if b.find("w:pPr/w:keepNext", NS) is not None]


def test_a_last_article_ending_in_a_table_keeps_only_the_paragraphs_after_it():
    doc = sample_zh()
    table = next(b for a in doc.articles for b in a.blocks if not isinstance(b, Paragraph))
    last = Article("signing", "签署", (Paragraph("本合同一式两份。"), table))
    blocks = _blocks(render_docx(dataclasses.replace(doc, articles=(*doc.articles[:-1], last))))
    closing = blocks[-2]
    assert paragraph_text(closing) == "（以下无正文）" and style_of(closing) == "BodyAfterTable"
    assert closing.find("w:pPr/w:keepNext", NS) is not None
    assert blocks[-3].tag == w("tbl")


def test_odd_number_of_signatories_leaves_an_empty_styled_cell():
    doc = dataclasses.replace(sample_zh(), signature_blocks=sample_zh().signature_blocks + (SignatureBlock("丙方", "担保公司"),))
    table = body(render_docx(doc)).findall("w:tbl", NS)[-1]
    rows = table.findall("w:tr", NS)
    assert len(rows) == 2
    empty = rows[1].findall("w:tc", NS)[1].find("w:p", NS)
    assert paragraph_text(empty) == "" and style_of(empty) == "Signature"


def test_characters_xml_cannot_hold_are_dropped_not_fatal():
    doc = dataclasses.replace(sample_en(), articles=(Article("x", "Bad\x0bchars", (Paragraph("tab\there\x01"),)),))
    document = docx.Document(io.BytesIO(render_docx(doc)))
    texts = [p.text for p in document.paragraphs]
    assert "Badchars" in texts and "tab\there" in texts


def test_unknown_language_is_rejected():
    with pytest.raises(ValueError):
        render_docx(dataclasses.replace(sample_en(), language="fr"))


# -- HTML ------------------------------------------------------------------------------------


def test_html_escapes_markup_in_every_field():
    evil = "<script>alert('x')</script>"
    doc = dataclasses.replace(
        sample_zh(), title=evil, number=evil,
        articles=(Article("k", evil, (Paragraph(evil), sample_zh().articles[3].blocks[1])),),
        signature_blocks=(SignatureBlock(evil, evil, (evil,)),),
    )
    html = render_html(doc)
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") >= 6


def test_html_preview_is_self_contained_and_numbered():
    html = render_html(sample_zh())
    assert '<html lang="zh-CN">' in html and '<meta charset="utf-8">' in html
    assert "<h2>第十一条 合同解除</h2>" in html and "<h2>第一条 服务内容</h2>" in html
    assert "<th>付款节点</th>" in html and "<td>360,000.00</td>" in html
    assert "<style>" in html and "http" not in html and "<link" not in html
    en = render_html(sample_en())
    assert '<html lang="en">' in en and "<h2>11. Termination</h2>" in en


@pytest.mark.parametrize("number, text", [(1, "一"), (10, "十"), (11, "十一"), (12, "十二"), (20, "二十"),
                                          (21, "二十一"), (100, "一百"), (105, "一百零五"), (110, "一百一十"),
                                          (1001, "一千零一")])
def test_chinese_counting_matches_word_article_numbers(number, text):
    assert chinese_counting(number) == text
    assert article_label(number, "zh-CN") == f"第{text}条"
