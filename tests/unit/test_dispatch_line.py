"""The labour-dispatch line (issue 17): a labelled corpus of contract wording, zh-CN and en, each row
the families of dispatch signs it shows (or none), measured against `dispatch_line`.

Precision and recall are printed to the test output (with or without -s) and recorded as the
test's properties (junit XML). A positive row counts as found when every family it is labelled
with is found (other families it also shows are not held against it); a negative row is a false
positive when any family fires on it.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from services.contracts.domain.dispatch_line import FAMILIES, FAMILY, dispatch_matches, dispatch_phrases

CORPUS = Path(__file__).with_name("dispatch_corpus.csv")
LANGUAGES = ("zh-CN", "en")
FLOOR = 0.9


def _rows() -> list[tuple[str, frozenset[str], str]]:
    with CORPUS.open(encoding="utf-8", newline="") as f:
        return [(r["language"], frozenset() if r["families"] == "none" else frozenset(r["families"].split("+")),
                 r["text"]) for r in csv.DictReader(f)]


ROWS = _rows()


def _found(language: str, text: str) -> set[str]:
    return {m.family for m in dispatch_matches(text, language)}


def _score(rows) -> tuple[Counter, list[str]]:
    counts, misses = Counter(), []
    for language, expected, text in rows:
        found = _found(language, text)
        if expected:
            hit = expected <= found
            counts["tp" if hit else "fn"] += 1
        else:
            hit = not found
            counts["tn" if hit else "fp"] += 1
        if not hit:
            misses.append(f"{language} expected {sorted(expected) or 'none'}, found {sorted(found) or 'none'}: {text}")
    return counts, misses


def test_the_corpus_covers_every_family_in_both_languages():
    assert len(ROWS) >= 60
    labels = {family for _, expected, _ in ROWS for family in expected}
    assert labels <= set(FAMILY), labels - set(FAMILY)
    for language in LANGUAGES:
        rows = [r for r in ROWS if r[0] == language]
        for family in FAMILIES:
            assert any(family.key in expected for _, expected, _ in rows), (language, family.key, "no positive")
        # a negative of a family: wording on the same subject that hands it to the vendor or denies it
        assert sum(1 for _, expected, _ in rows if not expected) >= len(FAMILIES), language


@pytest.mark.parametrize("family", [f.key for f in FAMILIES])
def test_each_family_has_a_positive_and_a_negative_that_it_tells_apart(family):
    positives = [(lang, text) for lang, expected, text in ROWS if family in expected]
    negatives = [(lang, text) for lang, expected, text in ROWS if not expected
                 and _mentions(family, lang, text)]
    assert positives and negatives, family
    assert any(family in _found(lang, text) for lang, text in positives)
    assert all(family not in _found(lang, text) for lang, text in negatives)


_TOPIC = {   # the words a negative row of a family is about (it says who does it, or that the client does not)
    "management": ("管理", "规章制度", "纪律", "辞退", "manag", "rules", "direction"),
    "attendance": ("考勤", "attendance"),
    "work_assignment": ("工作任务", "排班", "工作安排", "work orders", "assign", "schedules"),
    "individual_appraisal": ("考核", "绩效", "apprais", "assesses", "indicators"),
    "pay_per_head": ("支付", "结算", "工资", "pays", "charged", "wages"),
    "temporary_posts": ("临时性", "岗位", "temporary", "staffing"),
    "share_of_workforce": ("用工总量", "10%", "workforce"),
}


def _mentions(family: str, language: str, text: str) -> bool:
    return any(word in text for word in _TOPIC[family])


def test_precision_and_recall_on_the_labelled_corpus(capsys, record_property):
    lines = []
    for language in (*LANGUAGES, "all"):
        counts, misses = _score(ROWS if language == "all" else [r for r in ROWS if r[0] == language])
        precision = counts["tp"] / ((counts["tp"] + counts["fp"]) or 1)
        recall = counts["tp"] / ((counts["tp"] + counts["fn"]) or 1)
        record_property(f"dispatch_line_{language}", f"precision={precision:.3f} recall={recall:.3f}")
        lines.append((language, counts, precision, recall, misses))
    with capsys.disabled():
        for language, counts, precision, recall, misses in lines:
            print(f"\ndispatch line [{language}]: {sum(counts.values())} phrases, precision {precision:.3f}, "
                  f"recall {recall:.3f} (tp {counts['tp']}, fp {counts['fp']}, fn {counts['fn']}, tn {counts['tn']})")
            for miss in misses if language == "all" else ():
                print(f"  miss: {miss}")
    _, counts, precision, recall, misses = lines[-1]
    assert precision >= FLOOR and recall >= FLOOR, misses


def test_the_phrases_quote_the_wording_and_a_negation_cancels_only_its_own_clause():
    text = "甲方不得直接管理乙方人员，但乙方人员的考勤由甲方负责。"
    assert [(m.family, m.phrase) for m in dispatch_matches(text, "zh-CN")] == [("attendance", "考勤由甲方负责")]
    text = "The Client shall not manage the Vendor's Workers, but the Client shall keep their attendance."
    assert [(m.family, m.phrase) for m in dispatch_matches(text, "en")] == [
        ("attendance", "Client shall keep their attendance")]
    assert dispatch_phrases("考勤由乙方负责，甲方不负责乙方人员的考勤。", "zh-CN") == []


def test_overlapping_signs_of_one_family_count_once():
    # 甲方直接管理 and 由甲方直接管理 are two patterns of one family over the same words
    assert dispatch_phrases("乙方人员由甲方直接管理。", "zh-CN") == ["乙方人员由甲方直接管理"]
