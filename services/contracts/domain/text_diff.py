"""Token diff between two versions of a clause text, shared by the Word redline and the JSON comparison.

Chinese has no spaces between words, so Chinese is compared character by character; Latin text is
compared word by word, keeping numbers ("99.9", "1,000") whole so an amount reads as one change.
"""
from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Callable, Literal

Op = Literal["equal", "insert", "delete"]
DiffSegment = tuple[Op, str]

# CJK ideographs (BMP, extension A, compatibility, supplementary planes), CJK punctuation
# (。，、「」…) and full-width forms (，：；（）％): each is one token.
_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f"
_NUMBER = r"\d+(?:[.,]\d+)*"
_WORD = rf"[^\W\d_{_CJK}]+"
_TOKEN_PATTERNS = {
    "zh-CN": re.compile(rf"[{_CJK}]|{_NUMBER}|{_WORD}|\s+|.", re.DOTALL),
    # In English "third-party" or "Party's" is one word to a reader, so it is one token.
    "en": re.compile(rf"[{_CJK}]|{_NUMBER}|{_WORD}(?:['’-]{_WORD})*|\s+|.", re.DOTALL),
}


def tokenize(text: str, language: str) -> list[str]:
    """Split into diff tokens; joining the tokens gives back `text` exactly."""
    return _pattern_for(language).findall(text)


def diff_tokens(old_text: str, new_text: str, language: str) -> list[DiffSegment]:
    """Minimal readable edit script from old_text to new_text.

    Joining the "equal" and "delete" texts gives old_text, joining "equal" and "insert" gives
    new_text. Adjacent segments never share an op, and in each changed stretch the deletion
    comes before the insertion (the order Word shows them in).
    """
    old_tokens, new_tokens = tokenize(old_text, language), tokenize(new_text, language)
    # autojunk would treat frequent tokens (spaces, 的, the) as noise in long clauses.
    matcher = SequenceMatcher(None, old_tokens, new_tokens, autojunk=False)
    segments: list[DiffSegment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            segments.append(("delete", "".join(old_tokens[i1:i2])))
        if tag in ("insert", "replace"):
            segments.append(("insert", "".join(new_tokens[j1:j2])))
        if tag == "equal":
            segments.append(("equal", "".join(old_tokens[i1:i2])))
    return _absorb_small_equalities(_normalise(segments), language)


def _pattern_for(language: str) -> re.Pattern[str]:
    try:
        return _TOKEN_PATTERNS[language]
    except KeyError:
        raise ValueError(f"unsupported contract language: {language!r}") from None


def _absorb_small_equalities(segments: list[DiffSegment], language: str) -> list[DiffSegment]:
    """Fold a short unchanged stretch into the edits around it.

    "甲方应在五日内" -> "乙方须于十日内" reads better as one replaced phrase than as alternating
    one-character edits around a shared "方". The rule is the semantic cleanup of
    diff-match-patch: an equality no longer than the larger edit on each side is absorbed,
    measured in tokens so that a run of English words is not swallowed by one long word.
    """
    def size(text: str) -> int:
        return len(tokenize(text, language))

    changed = True
    while changed:
        changed = False
        for index, (op, text) in enumerate(segments):
            if op != "equal":
                continue
            before = _edit_size(segments[:index][::-1], size)
            after = _edit_size(segments[index + 1:], size)
            if before and after and size(text) <= min(before, after):
                segments[index:index + 1] = [("delete", text), ("insert", text)]
                segments = _normalise(segments)
                changed = True
                break
    return segments


def _edit_size(neighbours: list[DiffSegment], size: Callable[[str], int]) -> int:
    """Size of the larger side (deleted or inserted) of the edit run next to an equality."""
    sizes = {"delete": 0, "insert": 0}
    for op, text in neighbours:
        if op == "equal":
            break
        sizes[op] += size(text)
    return max(sizes.values())


def _normalise(segments: list[DiffSegment]) -> list[DiffSegment]:
    """Drop empty segments, put deletions before insertions within each changed run, merge neighbours."""
    result: list[DiffSegment] = []
    pending = {"delete": "", "insert": ""}

    def flush() -> None:
        for op in ("delete", "insert"):
            if pending[op]:
                result.append((op, pending[op]))
                pending[op] = ""

    for op, text in segments:
        if not text:
            continue
        if op == "equal":
            flush()
            if result and result[-1][0] == "equal":
                result[-1] = ("equal", result[-1][1] + text)
            else:
                result.append(("equal", text))
        else:
            pending[op] += text
    flush()
    return result
