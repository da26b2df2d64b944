"""Word redlines: accepting every change gives the new version, rejecting every change the old one.

Accept/Reject All is simulated on the WordprocessingML (tests/office_helpers.py); the LibreOffice
integration test checks the same documents with a real office suite.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.redline import render_redline_docx
from services.contracts.domain.document import Article, Paragraph
from services.contracts.domain.text_diff import diff_tokens, tokenize
from tests.office_helpers import (
    NS,
    body,
    paragraph_text,
    read_part,
    resolve_changes,
    restructured_zh,
    revised_en,
    revised_zh,
    sample_en,
    sample_zh,
    w,
)

WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)

VERSION_PAIRS = {
    "zh-CN edits": (sample_zh, revised_zh),
    "en edits": (sample_en, revised_en),
    "zh-CN restructured": (sample_zh, restructured_zh),
    "zh-CN restructured back": (restructured_zh, sample_zh),
    "en edits back": (revised_en, sample_en),
}


def layout(root: etree._Element) -> list[tuple[str | None, str]]:
    """(paragraph style, text) of every paragraph, table cells included, in reading order."""
    result = []
    for p in root.iter(w("p")):
        style = p.find("w:pPr/w:pStyle", NS)
        result.append((None if style is None else style.get(w("val")), paragraph_text(p)))
    return result


def redline(old, new) -> bytes:
    return render_redline_docx(old, new, "张律师", WHEN)


@pytest.mark.parametrize("pair", VERSION_PAIRS.values(), ids=VERSION_PAIRS.keys())
def test_accept_all_gives_new_version_and_reject_all_gives_old(pair):
    old, new = pair[0](), pair[1]()
    document = redline(old, new)
    assert layout(resolve_changes(document, accept=True)) == layout(body(render_docx(new)))
    assert layout(resolve_changes(document, accept=False)) == layout(body(render_docx(old)))


@pytest.mark.parametrize("pair", VERSION_PAIRS.values(), ids=VERSION_PAIRS.keys())
def test_table_rows_survive_accept_and_reject_in_the_right_tables(pair):
    old, new = pair[0](), pair[1]()
    document = redline(old, new)

    def tables(root):
        return [[[paragraph_text(c) for c in row.findall("w:tc", NS)] for row in t.findall("w:tr", NS)]
                for t in root.iter(w("tbl"))]

    assert tables(resolve_changes(document, accept=True)) == tables(body(render_docx(new)))
    assert tables(resolve_changes(document, accept=False)) == tables(body(render_docx(old)))


def test_changes_carry_author_date_and_unique_ids():
    root = body(redline(sample_zh(), revised_zh()))
    changes = root.xpath("//w:ins | //w:del", namespaces=NS)
    assert len(changes) > 20
    assert {c.get(w("author")) for c in changes} == {"张律师"}
    assert {c.get(w("date")) for c in changes} == {"2024-05-01T09:30:00Z"}
    ids = [c.get(w("id")) for c in changes]
    assert len(set(ids)) == len(ids)


def test_deleted_text_is_only_in_deltext_and_inserted_text_only_in_t():
    root = body(redline(sample_en(), revised_en()))
    assert root.xpath("//w:del//w:t", namespaces=NS) == []
    assert root.xpath("//w:ins//w:delText", namespaces=NS) == []
    assert all(t.xpath("ancestor::w:del", namespaces=NS) for t in root.iter(w("delText")))
    deleted = "".join(t.text for t in root.iter(w("delText")))
    inserted = "".join(t.text for t in root.xpath("//w:ins//w:t", namespaces=NS))
    assert "twelve" in deleted and "twenty-four" in inserted
    # English is compared word by word: no word is split into kept and changed letters.
    assert "tw" not in [t.text for t in root.xpath("//w:r[not(ancestor::w:ins)]/w:t", namespaces=NS)]


def test_chinese_is_compared_character_by_character():
    root = body(redline(sample_zh(), revised_zh()))
    paragraph = next(p for p in root.iter(w("p")) if "有效期为" in paragraph_text(p))
    # Without spaces to split on, a word-level diff would replace the whole sentence.
    kept = [t.text for t in paragraph.xpath("./w:r/w:t", namespaces=NS)]
    assert kept == ["本合同自双方签字盖章之日起生效，有效期为", "。"]
    assert [t.text for t in paragraph.iter(w("delText"))] == ["十二个月"]
    assert [t.text for t in paragraph.xpath("./w:ins//w:t", namespaces=NS)] == ["二十四个月，期满前三十日内双方可书面续约"]


def test_added_and_removed_articles_track_their_paragraph_marks():
    root = body(redline(sample_zh(), revised_zh()))
    headings = {paragraph_text(p): p for p in root.findall("w:p", NS)
                if p.find('w:pPr/w:pStyle[@w:val="ArticleHeading"]', NS) is not None}
    added, removed = headings["数据安全"], headings["人员管理"]
    assert added.find("w:pPr/w:rPr/w:ins", NS) is not None
    assert added.xpath("./w:r", namespaces=NS) == [], "all of the added heading is inside w:ins"
    assert removed.find("w:pPr/w:rPr/w:del", NS) is not None
    assert removed.xpath("./w:r", namespaces=NS) == []
    kept = headings["违约责任"]
    assert kept.find("w:pPr/w:rPr", NS) is None


def test_changed_tranche_row_is_compared_cell_by_cell():
    root = body(redline(sample_zh(), revised_zh()))
    tranche = root.findall("w:tbl", NS)[0]
    interim = tranche.findall("w:tr", NS)[2]
    assert interim.find("w:trPr/w:ins", NS) is None and interim.find("w:trPr/w:del", NS) is None
    share = interim.findall("w:tc", NS)[1]
    assert [t.text for t in share.iter(w("delText"))] == ["40"]
    assert [t.text for t in share.xpath(".//w:ins//w:t", namespaces=NS)] == ["50"]


def test_reshaped_table_is_replaced_row_by_row():
    root = body(redline(sample_zh(), restructured_zh()))
    tranche_tables = [t for t in root.findall("w:tbl", NS) if "付款节点" in paragraph_text(t)]
    assert len(tranche_tables) == 2
    old_rows, new_rows = (t.findall("w:tr", NS) for t in tranche_tables)
    assert all(r.find("w:trPr/w:del", NS) is not None for r in old_rows)
    assert all(r.find("w:trPr/w:ins", NS) is not None for r in new_rows)


def test_no_tracked_mark_sits_directly_before_a_table_or_at_a_cell_end():
    # LibreOffice cannot join a paragraph into a table; such marks must move to the paragraph above.
    for old, new in ((sample_zh(), restructured_zh()), (restructured_zh(), sample_zh())):
        root = body(redline(old, new))
        for p in root.iter(w("p")):
            if p.find("w:pPr/w:rPr/w:ins", NS) is None and p.find("w:pPr/w:rPr/w:del", NS) is None:
                continue
            following = p.getnext()
            assert following is not None and following.tag == w("p"), paragraph_text(p)


def test_identical_versions_have_no_tracked_changes():
    root = body(redline(sample_zh(), sample_zh()))
    assert root.xpath("//w:ins | //w:del", namespaces=NS) == []
    assert layout(root) == layout(body(render_docx(sample_zh())))


def test_redline_is_deterministic_and_turns_on_track_changes():
    first, second = redline(sample_zh(), revised_zh()), redline(sample_zh(), revised_zh())
    assert first == second
    settings_xml = etree.fromstring(read_part(first, "word/settings.xml"))
    assert settings_xml.find("w:trackRevisions", NS) is not None
    header = etree.fromstring(read_part(first, "word/header1.xml"))
    assert "V3 → V4" in "".join(header.itertext())


def test_dates_are_written_in_utc():
    shanghai = timezone(timedelta(hours=8))
    document = render_redline_docx(sample_en(), revised_en(), "Reviewer", datetime(2024, 5, 1, 17, 30, 15, 999, shanghai))
    dates = {c.get(w("date")) for c in body(document).xpath("//w:ins | //w:del", namespaces=NS)}
    assert dates == {"2024-05-01T09:30:15Z"}


def test_versions_in_different_languages_are_refused():
    with pytest.raises(ValueError):
        redline(sample_zh(), sample_en())


def test_empty_paragraphs_can_be_added_and_removed():
    old = sample_en()
    new = dataclasses.replace(old, articles=old.articles[:1] + (Article("blank", "", (Paragraph(""),)),) + old.articles[1:])
    document = redline(old, new)
    assert layout(resolve_changes(document, accept=True)) == layout(body(render_docx(new)))
    assert layout(resolve_changes(document, accept=False)) == layout(body(render_docx(old)))


# -- token diff ------------------------------------------------------------------------------


def rebuild(segments, side):
    return "".join(text for op, text in segments if op in ("equal", side))


def test_diff_tokens_marks_chinese_characters():
    assert diff_tokens("甲方应于五日内付款", "甲方应于十日内付款", "zh-CN") == [
        ("equal", "甲方应于"), ("delete", "五"), ("insert", "十"), ("equal", "日内付款")]


def test_diff_tokens_marks_whole_english_words_and_numbers():
    segments = diff_tokens("Availability of 99.5% per month.", "Availability of 99.9% per quarter.", "en")
    assert segments == [("equal", "Availability of "), ("delete", "99.5"), ("insert", "99.9"),
                        ("equal", "% per "), ("delete", "month"), ("insert", "quarter"), ("equal", ".")]


def test_diff_tokens_reads_short_common_stretches_as_one_change():
    segments = diff_tokens("The Client shall pay", "The Supplier must pay", "en")
    assert segments == [("equal", "The "), ("delete", "Client shall"), ("insert", "Supplier must"), ("equal", " pay")]


def test_tokenizer_splits_cjk_per_character_and_latin_per_word():
    assert tokenize("乙方提供SLA报告 third-party", "en") == ["乙", "方", "提", "供", "SLA", "报", "告", " ", "third-party"]
    assert tokenize("第3条", "zh-CN") == ["第", "3", "条"]
    with pytest.raises(ValueError):
        tokenize("x", "de")


contract_text = st.text(alphabet=st.sampled_from(list("甲乙方应于日内付款，。 abc Client pay 0123.%\t")), max_size=40)


@settings(max_examples=300, deadline=None)
@given(old=contract_text, new=contract_text, language=st.sampled_from(["zh-CN", "en"]))
def test_diff_tokens_rebuilds_both_versions(old, new, language):
    segments = diff_tokens(old, new, language)
    assert rebuild(segments, "delete") == old
    assert rebuild(segments, "insert") == new
    assert all(text for _, text in segments)
    ops = [op for op, _ in segments]
    assert all(a != b for a, b in zip(ops, ops[1:])), "neighbouring segments are merged"
    assert ("insert", "delete") not in list(zip(ops, ops[1:])), "deletion comes first in a change"
