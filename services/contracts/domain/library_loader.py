"""The library's file format, parsed: clause and template mappings (as read from the YAML files
of `services/contracts/library/`) into the domain objects.

`clauses/<key>.yaml` holds one clause and its versions, `templates/<key>.yaml` one template; the
format is in `services/contracts/library/README.md`. Reading the files is
`adapters/library_files.py`; this module gets what they hold, already loaded, and every error
names the file it came from.
"""
from __future__ import annotations

from pathlib import PurePath
from typing import Any, Iterable, Mapping

from services.contracts.domain.clauses import ClausePosition, ClauseVersion
from services.contracts.domain.templates import ArticleSlot, ContractLibrary, ContractTemplate
from services.contracts.domain.variables import LANGUAGES, SchemaError, VariableSpec
from shared.errors import DomainError

_CLAUSE_KEYS = {"key", "title", "versions"}
_VERSION_KEYS = {"version", "status", "variables", "positions", "notes"}
_TEMPLATE_KEYS = {"key", "kind", "version", "title", "articles", "variables", "sample_variables",
                  "sample_translations"}
_SLOT_KEYS = {"clause", "version", "when", "required"}


class LibraryFileError(ValueError):
    """A library file that cannot be loaded; the message starts with the file's path."""

    def __init__(self, path: PurePath, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


LoadedFile = tuple[PurePath, Any]   # a file's path (for names and messages) and what it holds


def build_library(clauses: Iterable[LoadedFile], templates: Iterable[LoadedFile]) -> ContractLibrary:
    """The library from its loaded files: every clause first, then the templates that use them."""
    library = ContractLibrary()
    for path, raw in clauses:
        _guard(path, raw, lambda raw, p=path: _add_clause(library, raw, p))
    for path, raw in templates:
        _guard(path, raw, lambda raw, p=path: library.add_template(_template(raw, p)))
    return library


def _guard(path: PurePath, raw: Any, load) -> None:
    try:
        if not isinstance(raw, Mapping):
            raise LibraryFileError(path, "the file must hold a mapping")
        load(raw)
    except LibraryFileError:
        raise
    except (DomainError, SchemaError, KeyError, TypeError, ValueError) as error:
        detail = error.detail if isinstance(error, DomainError) else str(error)
        raise LibraryFileError(path, f"{type(error).__name__}: {detail}") from error


def _only(raw: Mapping[str, Any], allowed: set[str], what: str, path: PurePath) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise LibraryFileError(path, f"{what}: unknown keys {sorted(unknown)}")


def _titles(title: Any, path: PurePath) -> Mapping[str, str]:
    # `{zh-CN: ..., en: A, B}` is a YAML flow mapping with a third key: the comma cut the title.
    if not isinstance(title, Mapping) or set(title) != set(LANGUAGES):
        raise LibraryFileError(path, f"title must map exactly {', '.join(LANGUAGES)} to text (quote a title "
                                     f"that holds a comma): {title!r}")
    return title


def _add_clause(library: ContractLibrary, raw: Mapping[str, Any], path: PurePath) -> None:
    _only(raw, _CLAUSE_KEYS, "clause", path)
    key = raw["key"]
    if path.stem != key:
        raise LibraryFileError(path, f"holds clause {key!r}; the file must be named {key}.yaml")
    library.clauses.add_clause(key, _titles(raw["title"], path))
    for entry in raw["versions"]:
        _only(entry, _VERSION_KEYS, f"version {entry.get('version')}", path)
        library.clauses.add_version(ClauseVersion(
            clause_key=key, version=str(entry["version"]), status=entry.get("status", "draft"),
            positions=tuple(ClausePosition(p["key"], p["body"]) for p in entry["positions"]),
            variables=tuple(VariableSpec.from_dict(v) for v in entry.get("variables") or ()),
            notes=entry.get("notes", "")))


def _template(raw: Mapping[str, Any], path: PurePath) -> ContractTemplate:
    _only(raw, _TEMPLATE_KEYS, "template", path)
    if path.stem != raw["key"]:
        raise LibraryFileError(path, f"holds template {raw['key']!r}; the file must be named {raw['key']}.yaml")
    slots = []
    for slot in raw["articles"]:
        _only(slot, _SLOT_KEYS, f"article {slot.get('clause')}", path)
        slots.append(ArticleSlot(clause=slot["clause"], version=str(slot.get("version", "^1")),
                                 when=slot.get("when"), required=bool(slot.get("required", False))))
    variables = raw.get("variables") or ()
    if isinstance(variables, Mapping):   # `variables: {name: {type: ...}}` reads as well as a list
        variables = [{"name": name, **spec} for name, spec in variables.items()]
    return ContractTemplate(
        key=raw["key"], kind=raw["kind"], version=str(raw["version"]), title=_titles(raw["title"], path),
        articles=tuple(slots),
        variables=tuple(VariableSpec.from_dict(v) for v in variables),
        sample_variables=raw.get("sample_variables") or {},
        sample_translations=_translations(raw.get("sample_translations") or {}, path))


def _translations(raw: Mapping[str, Any], path: PurePath) -> dict[str, Mapping[str, Any]]:
    unknown = set(raw) - set(LANGUAGES)
    if unknown:
        raise LibraryFileError(path, f"sample_translations for unknown language(s) {', '.join(sorted(unknown))}")
    return dict(raw)
