"""The clause library as each organisation sees it: the built-in library (the files, loaded at
start) with the organisation's own clause versions and status changes applied on top.

`Catalogue.of(uow.clause_versions, org)` gives the library to draft from; a view is cached per
organisation and rebuilt when the fingerprint of its clause rows moves, which every replica
notices on its next request.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, Mapping

from services.contracts.adapters.library_files import load_library
from services.contracts.domain.clauses import ClauseLibrary, ClausePosition, ClauseVersion
from services.contracts.domain.templates import ContractLibrary, ResolvedTemplate
from services.contracts.domain.variables import SchemaError, VariableSpec
from shared.errors import DomainError, Invalid, field_error

log = logging.getLogger("qiyue.contracts")


class LibraryUnavailable(DomainError):
    status, title = 503, "Service unavailable"


# --- the library as an organisation sees it ----------------------------------------------------

class Library:
    """One immutable view of the library; resolved templates are kept (resolving builds schemas)."""

    def __init__(self, contracts: ContractLibrary):
        self.contracts = contracts
        self._resolved: dict[str, ResolvedTemplate] = {}

    @property
    def clauses(self):
        return self.contracts.clauses

    @property
    def template_keys(self) -> tuple[str, ...]:
        return self.contracts.template_keys

    def template(self, key: str) -> ResolvedTemplate:
        if key not in self._resolved:
            self._resolved[key] = self.contracts.template(key)
        return self._resolved[key]


class Catalogue:
    """The built-in library (the files, loaded at start) and, per organisation, that library with
    its own clause versions and status changes on top. An organisation's view is rebuilt when its
    clause rows change, which every replica notices: their fingerprint is read on each use.

    A library that fails to load is logged and answered 503 on the endpoints that need it: the
    lifecycle of contracts already drafted (signatures, key dates) does not depend on it."""

    def __init__(self, load: Callable[[], ContractLibrary] = load_library, keep: int = 32):
        self._load, self._keep = load, keep
        self._builtin: Library | None = None
        self._error: Exception | None = None
        self._views: OrderedDict[tuple[str, tuple], Library] = OrderedDict()
        self._lock = threading.Lock()

    def start(self) -> None:
        try:
            self._builtin = Library(self._load())
            self._error = None
        except Exception as error:   # noqa: BLE001 - reported on every use instead of stopping the service
            log.exception("the built-in clause library did not load")
            self._error = error

    @property
    def builtin(self) -> Library:
        with self._lock:
            if self._builtin is None and self._error is None:
                self.start()
        if self._builtin is None:
            raise LibraryUnavailable(f"The clause library could not be loaded: {self._error}")
        return self._builtin

    def of(self, clause_versions, org: str) -> Library:
        builtin = self.builtin
        fingerprint = clause_versions.fingerprint(org)
        if fingerprint is None:
            return builtin
        with self._lock:
            view = self._views.get((org, fingerprint))
            if view is not None:
                self._views.move_to_end((org, fingerprint))
                return view
        view = self.fresh(clause_versions, org)
        with self._lock:
            for stale in [k for k in self._views if k[0] == org]:
                del self._views[stale]
            self._views[(org, fingerprint)] = view
            while len(self._views) > self._keep:
                self._views.popitem(last=False)
        return view

    def fresh(self, clause_versions, org: str) -> Library:
        """A private copy to change: the built-in library copied, the organisation's rows applied."""
        contracts = _copy(self.builtin.contracts)
        for row in clause_versions.rows(org):
            _apply(contracts, row)
        return Library(contracts)


def _copy(library: ContractLibrary) -> ContractLibrary:
    """A library whose clauses can change without touching `library`. Versions are frozen, so the
    copy shares them (and skips re-reading and re-checking the files); each clause's dict is new."""
    clauses = ClauseLibrary()
    for clause in library.clauses:
        clauses.add_clause(clause.key, clause.title).versions.update(clause.versions)
    copied = ContractLibrary(clauses)
    for key in library.template_keys:
        copied.add_template(library.template(key).template)
    return copied


def _apply(contracts: ContractLibrary, row) -> None:
    clauses = contracts.clauses
    if not row.builtin:
        clauses.add_version(clause_version(row.key, row.version, "draft", row.definition))
    if row.status in ("published", "deprecated") and clauses.clause(row.key).version(row.version).status == "draft":
        clauses.publish(row.key, row.version)
    if row.status == "deprecated":
        clauses.deprecate(row.key, row.version)


def clause_version(key: str, number: str, status: str, definition: Mapping[str, Any]) -> ClauseVersion:
    """A clause version from its JSON definition ({variables, positions, notes}); 422 naming the part."""
    try:
        variables = tuple(VariableSpec.from_dict(v) for v in definition.get("variables") or ())
    except SchemaError as error:
        raise Invalid(str(error), errors=[field_error("/variables", str(error))]) from None
    try:
        positions = tuple(ClausePosition(p["key"], p["body"]) for p in definition.get("positions") or ())
        return ClauseVersion(clause_key=key, version=number, status=status, positions=positions,
                             variables=variables, notes=definition.get("notes") or "")
    except Invalid as error:
        raise Invalid(error.detail, errors=error.errors or [field_error("/positions", error.detail)]) from None
