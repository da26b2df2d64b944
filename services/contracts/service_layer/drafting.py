"""Drafting use cases: the library each organisation sees, drafting a contract, new versions of a
draft, the risk checks of a version, and an organisation's own clause versions.

Each write runs in one unit of work: the contract row, its new immutable version, the audit
entry and the `contract.drafted` event commit together or not at all. The domain decides
(validation, derived amounts, rendering, terms); this module loads, stores and announces.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Mapping

from pydantic_core import to_jsonable_python
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.contracts.adapters import audit_log
from services.contracts.adapters import repository as repo
from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.tables import ClauseVersionRow, ContractRow, ContractVersionRow
from services.contracts.domain import lifecycle as states
from services.contracts.domain import risk_checks
from services.contracts.domain.clauses import ClauseLibrary, ClausePosition, ClauseVersion, PositionChoice
from services.contracts.domain.drafting import Draft, draft
from services.contracts.domain.library_loader import load_library
from services.contracts.domain.templates import ContractLibrary, ResolvedTemplate
from services.contracts.domain.variables import SchemaError, VariableSpec
from services.contracts.service_layer.lifecycle import (DOCUMENT, contract, new_id,
                                                        policy, snapshot, version, version_findings)
from shared.auth import Principal
from shared.errors import (Conflict, DomainError, Invalid, PreconditionFailed, PreconditionRequired,
                           field_error)
from shared.events.contracts import ContractDrafted, ContractTerms
from shared.uow import UnitOfWork

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

    def of(self, session: Session, org: str) -> Library:
        builtin = self.builtin
        fingerprint = repo.clause_fingerprint(session, org)
        if fingerprint is None:
            return builtin
        with self._lock:
            view = self._views.get((org, fingerprint))
            if view is not None:
                self._views.move_to_end((org, fingerprint))
                return view
        view = self.fresh(session, org)
        with self._lock:
            for stale in [k for k in self._views if k[0] == org]:
                del self._views[stale]
            self._views[(org, fingerprint)] = view
            while len(self._views) > self._keep:
                self._views.popitem(last=False)
        return view

    def fresh(self, session: Session, org: str) -> Library:
        """A private copy to change: the built-in library copied, the organisation's rows applied."""
        contracts = _copy(self.builtin.contracts)
        for row in repo.clause_rows(session, org):
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


def _apply(contracts: ContractLibrary, row: ClauseVersionRow) -> None:
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


# --- drafting ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DraftRequest:
    template: str
    language: str
    variables: Mapping[str, Any]
    positions: Mapping[str, Any]
    template_version: str | None = None


def _template(library: Library, key: str, wanted_version: str | None) -> ResolvedTemplate:
    if key not in library.template_keys:
        raise Invalid(f"There is no template {key!r}.", errors=[field_error(
            "/template", f"must be one of {', '.join(sorted(library.template_keys))}")])
    template = library.template(key)
    if wanted_version is not None and wanted_version != str(template.version):
        raise Invalid(f"Template {key} is at version {template.version}.", errors=[field_error(
            "/template_version", f"only version {template.version} of {key} can be drafted from")])
    return template


def draft_contract(uow: UnitOfWork, library: Library, who: Principal, request: DraftRequest,
                   now: dt.datetime) -> tuple[ContractRow, ContractVersionRow]:
    """A new contract in draft, as version 1; 422 listing every bad variable."""
    template = _template(library, request.template, request.template_version)
    drafted = draft(template, request.language, request.variables, request.positions, version=1)
    _ensure_number_free(uow.session, who.org, drafted.number)
    contract_id = new_id()
    terms = _terms(drafted, contract_id, who.org, 1)
    row = ContractRow(id=contract_id, org=who.org, number=drafted.number, kind=drafted.kind,
                      language=drafted.language, template_key=drafted.template_key, status=states.Status.DRAFT,
                      version=1, revision=1, authors=[who.sub], created_by=who.sub, created_at=now, updated_at=now,
                      **_search_columns(terms, drafted))
    first = _version_row(row, drafted, terms, request.variables, who.sub, now)
    try:
        repo.add_contract(uow.session, row, first)
    except IntegrityError:   # the same number drafted at the same moment in another request
        raise _number_taken(drafted.number) from None
    audit_log.record(uow.session, org=row.org, contract_id=row.id, actor=who.sub, action="contract.drafted",
                     before=None, after=snapshot(row), detail={"version": 1})
    _announce(uow, row)
    return row, first


@dataclass(frozen=True)
class Edit:
    """A new version's input: the whole of it (PUT), or a JSON merge patch (RFC 7396) of it (PATCH)."""
    variables: Mapping[str, Any] | None
    positions: Mapping[str, Any] | None
    reason: str | None = None
    template_version: str | None = None
    patch: bool = False

    def applied_to(self, variables: Mapping[str, Any], positions: Mapping[str, Any]) -> tuple[dict, dict]:
        if not self.patch:
            return dict(self.variables or {}), dict(self.positions or {})
        return merge_patch(variables, self.variables or {}), merge_patch(positions, self.positions or {})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def etag(version_number: int) -> str:
    return f'"{version_number}"'


def _ensure_current(if_match: str | None, row: ContractRow) -> None:
    """If-Match must name the current version (RFC 9110 strong comparison; `*` names any)."""
    tags = [t.strip() for t in (if_match or "").split(",") if t.strip()]
    if "*" in tags or etag(row.version) in tags:
        return
    raise PreconditionFailed(f"Contract {row.id} is at version {row.version}; the edit was based on another one. "
                             "Read it again and reapply the change.", current_version=row.version,
                             etag=etag(row.version))


def revise_contract(uow: UnitOfWork, library: Library, who: Principal, contract_id: str, if_match: str | None,
                    edit: Edit, now: dt.datetime) -> tuple[ContractRow, ContractVersionRow]:
    """A new immutable version of a draft: 428 without If-Match, 412 when it is stale, 409 out of draft."""
    if not if_match:
        raise PreconditionRequired("Send If-Match with the ETag of the version you edited.",
                                   errors=[{"parameter": "If-Match", "in": "header", "detail": "required"}])
    session = uow.session
    row = contract(session, who.org, contract_id, lock=True)
    _ensure_current(if_match, row)
    states.ensure_allowed("edit", row.status)
    current = version(session, row, row.version)
    variables, positions = edit.applied_to(current.variables, position_inputs(current.positions))
    template = _template(library, row.template_key, edit.template_version)
    drafted = draft(template, current.language, variables, positions, version=row.version + 1)
    before = snapshot(row)
    new = append_version(session, row, drafted, variables, who.sub, now, reason=edit.reason)
    audit_log.record(session, org=row.org, contract_id=row.id, actor=who.sub, action="contract.revised",
                     before=before, after=snapshot(row), detail={"version": row.version, "reason": edit.reason})
    _announce(uow, row)
    return row, new


def append_version(session: Session, row: ContractRow, drafted: Draft, variables: Mapping[str, Any], author: str,
                   now: dt.datetime, *, reason: str | None = None, change_request_id: str | None = None
                   ) -> ContractVersionRow:
    """Store `drafted` as the contract's next version and bring the row's searched columns along
    (the caller has locked the row, and audits and announces the change as its kind requires)."""
    if drafted.number != row.number:
        _ensure_number_free(session, row.org, drafted.number)
    terms = _terms(drafted, row.id, row.org, row.version + 1)
    for name, value in _search_columns(terms, drafted).items():
        setattr(row, name, value)
    row.number, row.version, row.revision, row.updated_at = drafted.number, row.version + 1, row.revision + 1, now
    row.authors = sorted(set(row.authors or []) | {author})
    new = _version_row(row, drafted, terms, variables, author, now, reason, change_request_id)
    try:
        repo.add_version(session, new)
    except IntegrityError:   # the new number was taken at the same moment in another request
        raise _number_taken(drafted.number) from None
    return new


def _ensure_number_free(session: Session, org: str, number: str) -> None:
    if repo.number_taken(session, org, number):
        raise _number_taken(number)


def _number_taken(number: str) -> Conflict:
    return Conflict(f"Contract number {number} is already used in this organisation.",
                    errors=[field_error("/variables/contract_number", "already used by another contract")])


def _announce(uow: UnitOfWork, row: ContractRow) -> None:
    uow.emit(ContractDrafted(contract_id=row.id, org=row.org, version=row.version, template=row.template_key,
                             language=row.language, title=row.title))


def _terms(drafted: Draft, contract_id: str, org: str, number: int) -> ContractTerms:
    return ContractTerms.model_validate({**drafted.terms, "contract_id": contract_id, "org": org, "version": number})


def _search_columns(terms: ContractTerms, drafted: Draft) -> dict[str, Any]:
    parties = {p.role: p.name for p in terms.parties}
    project = str(drafted.variables.get("project_name") or "")
    return dict(client_name=parties.get("client", ""), vendor_name=parties.get("vendor", ""),
                search_text="\n".join([terms.title, project, terms.number, *parties.values()]).lower()[:2000],
                counterparty_text="\n".join(parties.values()).lower()[:1000], currency=terms.currency,
                total_amount=terms.total_amount, effective_date=terms.effective_date, end_date=terms.end_date,
                renewal_notice_days=terms.renewal_notice_days, title=terms.title)


def _version_row(row: ContractRow, drafted: Draft, terms: ContractTerms, variables: Mapping[str, Any], author: str,
                 now: dt.datetime, reason: str | None = None, change_request_id: str | None = None
                 ) -> ContractVersionRow:
    return ContractVersionRow(
        id=new_id(), org=row.org, contract_id=row.id, version=row.version, template_key=drafted.template_key,
        template_version=drafted.template_version, language=drafted.language,
        variables=jsonable(variables), values=jsonable(dict(drafted.variables)),
        positions={key: _choice_json(choice) for key, choice in drafted.positions.items()},
        clause_versions=dict(drafted.clause_versions),
        deviations=[{"clause": d.clause_key, "kind": d.kind, "position": d.position,
                     "text": dict(d.text) if d.text else None} for d in drafted.deviations],
        terms=terms.model_dump(mode="json", exclude={"contract_id", "org", "version"}),
        document=DOCUMENT.dump_python(drafted.document, mode="json"),
        docx_sha256=hashlib.sha256(render_docx(drafted.document)).hexdigest(),
        reason=reason, change_request_id=change_request_id, created_by=author, created_at=now)


def jsonable(value: Any) -> Any:
    """Parsed values as JSON: Decimals as strings, dates ISO, records and frozen mappings as objects."""
    return to_jsonable_python(value, fallback=lambda o: vars(o) if isinstance(o, SimpleNamespace) else dict(o))


def _choice_json(choice: PositionChoice) -> dict:
    return {"kind": choice.kind, "key": choice.key, "text": dict(choice.text) if choice.text else None}


def position_inputs(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored position choices back in the form a request gives them (what an edit patches)."""
    def given(choice: Mapping[str, Any]) -> Any:
        if choice.get("kind") == "custom":
            return {"custom": choice.get("text") or {}}
        if choice.get("kind") == "omitted":
            return {"omit": True}
        return choice.get("key")
    return {key: given(choice) if isinstance(choice, Mapping) else choice for key, choice in (stored or {}).items()}


# --- reading -----------------------------------------------------------------------------------

def findings(session: Session, org: str, contract_id: str, number: int | None
             ) -> tuple[ContractVersionRow, list[risk_checks.Finding]]:
    """The risk checks of a version (default: the current one) with the organisation's limits."""
    row = contract(session, org, contract_id)
    checked = version(session, row, number or row.version)
    return checked, version_findings(row, checked, policy(session, org))


# --- an organisation's clause versions ---------------------------------------------------------

def _clause_stream(org: str, key: str) -> str:
    return f"clause:{org}:{key}"


def add_clause_version(uow: UnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                       definition: Mapping[str, Any], now: dt.datetime) -> ClauseVersion:
    """A new version of a clause, in draft; a version number already used is a 409."""
    library = catalogue.fresh(uow.session, who.org)
    existing = library.clauses.clause(key).versions
    proposed = clause_version(key, number, "draft", definition)
    if proposed.version in existing:
        raise Conflict(f"Clause {key} already has version {proposed.version} "
                       f"({existing[proposed.version].status}); versions are never reused.")
    library.clauses.add_version(proposed)
    repo.add_clause_row(uow.session, ClauseVersionRow(
        id=new_id(), org=who.org, key=key, version=str(proposed.version), status="draft",
        title=dict(library.clauses.clause(key).title), definition=jsonable(definition), builtin=False,
        created_by=who.sub, created_at=now, updated_at=now))
    _audit_clause(uow, who, key, "clause.version_added", None, str(proposed.version))
    return proposed


def replace_clause_draft(uow: UnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                         definition: Mapping[str, Any], now: dt.datetime) -> ClauseVersion:
    """Rewrite a draft version; a published or deprecated one never changes (409)."""
    library = catalogue.fresh(uow.session, who.org)
    proposed = clause_version(key, number, "draft", definition)
    current = library.clauses.clause(key).version(proposed.version)
    row = repo.clause_row(uow.session, who.org, key, str(proposed.version), lock=True)
    if row is None or row.builtin:
        raise Conflict(f"{current.label} is built in: add a new version instead.")
    library.clauses.add_version(proposed)   # refuses a published one
    before = row.definition
    row.definition, row.updated_at = jsonable(definition), now
    _audit_clause(uow, who, key, "clause.version_replaced", before, str(proposed.version))
    return proposed


def publish_clause_version(uow: UnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                           now: dt.datetime) -> ClauseVersion:
    return _set_clause_status(uow, catalogue, who, key, number, now, "published")


def deprecate_clause_version(uow: UnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                             now: dt.datetime) -> ClauseVersion:
    return _set_clause_status(uow, catalogue, who, key, number, now, "deprecated")


def _set_clause_status(uow: UnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                       now: dt.datetime, status: str) -> ClauseVersion:
    library = catalogue.fresh(uow.session, who.org)
    change = library.clauses.publish if status == "published" else library.clauses.deprecate
    changed = change(key, number)   # 409 from the domain: a published version is not published again
    _ensure_templates_resolve(library, f"{changed.label} {status}")
    row = repo.clause_row(uow.session, who.org, key, str(changed.version), lock=True)
    if row is None:   # a built-in version: the organisation's status of it is a row of its own
        repo.add_clause_row(uow.session, ClauseVersionRow(
            id=new_id(), org=who.org, key=key, version=str(changed.version), status=status,
            title=dict(library.clauses.clause(key).title), definition={}, builtin=True, created_by=who.sub,
            created_at=now, updated_at=now))
    else:
        row.status, row.updated_at = status, now
    _audit_clause(uow, who, key, f"clause.{status}", None, str(changed.version))
    return changed


def _ensure_templates_resolve(library: Library, change: str) -> None:
    """Refuse a change that leaves a template with no usable version of a clause (or clashing variables)."""
    for key in library.template_keys:
        try:
            library.template(key)
        except DomainError as error:
            raise Conflict(f"With {change}, template {key} could not be drafted from: {error.detail}") from None


def _audit_clause(uow: UnitOfWork, who: Principal, key: str, action: str, before: Any, number: str) -> None:
    audit_log.append(uow.session, stream=_clause_stream(who.org, key), org=who.org, actor=who.sub, action=action,
                     before=before, after=jsonable(repo.clause_row(uow.session, who.org, key, number).model_dump()),
                     detail={"version": number})
