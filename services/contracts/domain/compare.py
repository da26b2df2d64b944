"""Comparing two versions of a contract: variables field by field, clauses by key, text by token.

Variables are compared leaf by leaf and named by JSON pointer (/total_price/amount). Clauses are
matched by clause key, never by article number, so inserting an article does not make every
later one look changed; a clause is added, removed, changed, drafted in another position
(standard, a fallback, custom) or moved to another place among the others. Text is diffed word
by word (character by character for Chinese) with the same diff the Word redline uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Iterator

from services.contracts.domain.document import Article, ContractDocument, Paragraph, Table
from services.contracts.domain.text_diff import diff_tokens

_MISSING = object()


@dataclass(frozen=True)
class VersionView:
    """What is compared of one version."""
    number: int
    variables: dict
    positions: dict[str, str]            # clause key -> position key ("standard", a fallback, "custom")
    clause_versions: dict[str, str]      # clause key -> library version used
    document: ContractDocument


def compare(old: VersionView, new: VersionView) -> dict:
    return {"from": old.number, "to": new.number,
            "variables": variable_changes(old.variables, new.variables),
            "clauses": clause_changes(old, new)}


# --- variables ------------------------------------------------------------------------------------

def variable_changes(old: dict, new: dict) -> list[dict]:
    return list(_diff_values("", old, new))


def _diff_values(pointer: str, old: Any, new: Any) -> Iterator[dict]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in _ordered_keys(old, new):
            yield from _diff_values(f"{pointer}/{_escape(key)}", old.get(key, _MISSING), new.get(key, _MISSING))
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            yield from _diff_values(f"{pointer}/{index}", old[index] if index < len(old) else _MISSING,
                                    new[index] if index < len(new) else _MISSING)
    elif old is _MISSING:
        yield {"pointer": pointer, "change": "added", "to": new}
    elif new is _MISSING:
        yield {"pointer": pointer, "change": "removed", "from": old}
    elif old != new:
        yield {"pointer": pointer, "change": "changed", "from": old, "to": new}


def _ordered_keys(old: dict, new: dict) -> list:
    return list(old) + [k for k in new if k not in old]


def _escape(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


# --- clauses --------------------------------------------------------------------------------------

def clause_changes(old: VersionView, new: VersionView) -> list[dict]:
    """One entry per clause key present in either version, in the new version's article order."""
    old_articles = {a.clause_key: a for a in old.document.articles}
    new_articles = {a.clause_key: a for a in new.document.articles}
    keys = list(new_articles) + [k for k in old_articles if k not in new_articles]
    moved = moved_clauses(list(old_articles), list(new_articles))
    changes = [_clause_change(key, old_articles.get(key), new_articles.get(key), old, new) for key in keys]
    for entry in changes:
        if entry["clause"] in moved:
            entry["moved"] = {"from": list(old_articles).index(entry["clause"]) + 1,
                              "to": list(new_articles).index(entry["clause"]) + 1}
            if entry["change"] == "unchanged":
                entry["change"] = "moved"
    return changes


def moved_clauses(old_keys: list[str], new_keys: list[str]) -> set[str]:
    """Clauses whose place among the clauses both versions share has changed.

    Renumbering because an article was inserted or removed is not a move; of the shared clauses,
    the longest run kept in the same order stays put and the others moved.
    """
    common = set(old_keys) & set(new_keys)
    old_order = [k for k in old_keys if k in common]
    new_order = [k for k in new_keys if k in common]
    matcher = SequenceMatcher(None, old_order, new_order, autojunk=False)
    kept = {k for block in matcher.get_matching_blocks() for k in old_order[block.a:block.a + block.size]}
    return common - kept


def _clause_change(key: str, before: Article | None, after: Article | None, old: VersionView,
                   new: VersionView) -> dict:
    entry: dict[str, Any] = {"clause": key, "heading": (after or before).heading}
    if before is None or after is None:
        entry["change"] = "added" if before is None else "removed"
        entry["text"] = [("insert" if before is None else "delete", article_text(after or before))]
        return {**entry, "text": [list(s) for s in entry["text"]]}
    position = (old.positions.get(key, "standard"), new.positions.get(key, "standard"))
    version = (old.clause_versions.get(key), new.clause_versions.get(key))
    old_text, new_text = article_text(before), article_text(after)
    if position[0] != position[1]:
        entry["change"] = "position_changed"
    elif old_text != new_text or before.heading != after.heading:
        entry["change"] = "changed"
    else:
        entry["change"] = "unchanged"
    if position[0] != position[1]:
        entry["position"] = {"from": position[0], "to": position[1]}
    if version[0] != version[1]:
        entry["clause_version"] = {"from": version[0], "to": version[1]}
    if old_text != new_text:
        entry["text"] = [list(s) for s in diff_tokens(old_text, new_text, new.document.language)]
    return entry


def article_text(article: Article) -> str:
    """The article as plain text: paragraphs, and table rows with cells separated by " | "."""
    parts = []
    for block in article.blocks:
        if isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Table):
            parts.extend(" | ".join(row) for row in (block.header, *block.rows))
    return "\n".join(parts)
