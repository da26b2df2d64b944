"""Load the built-in library (`services/contracts/library/`) into the domain objects.

`clauses/<key>.yaml` holds one clause and its versions, `templates/<key>.yaml` one template; the
format is in `services/contracts/library/README.md`. Every error names the file it came from.
Files are read with `yaml.safe_load` only: a library file is data, never code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from services.contracts.domain.clauses import ClausePosition, ClauseVersion
from services.contracts.domain.templates import ArticleSlot, ContractLibrary, ContractTemplate
from services.contracts.domain.variables import LANGUAGES, SchemaError, VariableSpec
from shared.errors import DomainError

BUILT_IN = Path(__file__).resolve().parents[1] / "library"

_CLAUSE_KEYS = {"key", "title", "versions"}
_VERSION_KEYS = {"version", "status", "variables", "positions", "notes"}
_TEMPLATE_KEYS = {"key", "kind", "version", "title", "articles", "variables", "sample_variables"}
_SLOT_KEYS = {"clause", "version", "when", "required"}


class LibraryFileError(ValueError):
    """A library file that cannot be loaded; the message starts with the file's path."""

    def __init__(self, path: Path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


def load_library(root: Path | str = BUILT_IN) -> ContractLibrary:
    root = Path(root)
    library = ContractLibrary()
    for path in sorted((root / "clauses").glob("*.yaml")):
        _guard(path, lambda raw, p=path: _add_clause(library, raw, p))
    for path in sorted((root / "templates").glob("*.yaml")):
        _guard(path, lambda raw, p=path: library.add_template(_template(raw, p)))
    return library


def _guard(path: Path, load) -> None:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, Mapping):
            raise LibraryFileError(path, "the file must hold a mapping")
        load(raw)
    except LibraryFileError:
        raise
    except yaml.YAMLError as error:
        raise LibraryFileError(path, f"not valid YAML: {error}") from error
    except (DomainError, SchemaError, KeyError, TypeError, ValueError) as error:
        detail = error.detail if isinstance(error, DomainError) else str(error)
        raise LibraryFileError(path, f"{type(error).__name__}: {detail}") from error


def _only(raw: Mapping[str, Any], allowed: set[str], what: str, path: Path) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise LibraryFileError(path, f"{what}: unknown keys {sorted(unknown)}")


def _titles(title: Any, path: Path) -> Mapping[str, str]:
    # `{zh-CN: ..., en: A, B}` is a YAML flow mapping with a third key: the comma cut the title.
    if not isinstance(title, Mapping) or set(title) != set(LANGUAGES):
        raise LibraryFileError(path, f"title must map exactly {', '.join(LANGUAGES)} to text (quote a title "
                                     f"that holds a comma): {title!r}")
    return title


def _add_clause(library: ContractLibrary, raw: Mapping[str, Any], path: Path) -> None:
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


def _template(raw: Mapping[str, Any], path: Path) -> ContractTemplate:
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
        sample_variables=raw.get("sample_variables") or {})
