"""Drafting use cases: drafting a contract, new versions of a draft, and the amended version a
change request makes.

Each write runs in one unit of work: the `Contract` aggregate (which records `contract.drafted`
or `contract.amended`), its new immutable version and the audit entry commit together or not at
all. The domain decides (validation, derived amounts, rendering, terms); this module loads,
stores and announces. The version is drafted and its DOCX rendered ahead of the write
transaction (`rendering`), and again inside only if what it is drafted from moved meanwhile.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Mapping

from pydantic_core import to_jsonable_python

from services.contracts import views
from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.repository import Duplicate
from services.contracts.domain.clauses import PositionChoice
from services.contracts.domain.contract import DOCUMENT, Contract, etag
from services.contracts.domain.drafting import Draft, draft
from services.contracts.domain.templates import ResolvedTemplate
from services.contracts.service_layer import rendering
from services.contracts.service_layer.catalogue import Catalogue, Library
from services.contracts.service_layer.unit_of_work import ContractsUnitOfWork
from shared.auth import Principal
from shared.errors import Conflict, Invalid, PreconditionFailed, PreconditionRequired, field_error
from shared.events.contracts import ContractTerms
from shared.idempotency import Answer, IdempotencyKey, once
from shared.ids import new_id

__all__ = ["Catalogue", "Library", "DraftRequest", "Edit", "draft_contract", "revise_contract", "store_amendment",
           "etag", "jsonable", "merge_patch", "position_inputs", "NextVersion", "RenderedVersion", "render_version"]


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


def draft_contract(uow: ContractsUnitOfWork, catalogue: Catalogue, who: Principal, request: DraftRequest,
                   now: dt.datetime, key: IdempotencyKey | None = None) -> Answer:
    """A new contract in draft, as version 1; 422 listing every bad variable. Once per
    Idempotency-Key: a retry gets the first answer (201 with the contract). Rendered ahead of the
    write transaction, like every new version (`rendering`)."""
    rendered = rendering.ahead(uow, lambda: _first_version(catalogue.of(uow.clause_versions, who.org), request),
                               render_version)

    def act() -> Answer:
        contract, first = _draft(uow, catalogue.of(uow.clause_versions, who.org), who, request, now, rendered)
        return 201, views.contract_json(contract, first)
    return once(uow, key, act)


def _first_version(library: Library, request: DraftRequest) -> NextVersion:
    template = _template(library, request.template, request.template_version)
    return NextVersion(template, request.language, request.variables, request.positions, 1)


def _draft(uow: ContractsUnitOfWork, library: Library, who: Principal, request: DraftRequest,
           now: dt.datetime, ahead: rendering.Ahead | None = None) -> tuple[Contract, Any]:
    rendered = rendering.reuse(ahead, _first_version(library, request), render_version)
    drafted = rendered.drafted
    _ensure_number_free(uow, who.org, drafted.number)
    contract_id = new_id()
    terms = _terms(drafted, contract_id, who.org, 1)
    contract = Contract.drafted(id=contract_id, org=who.org, number=drafted.number, kind=drafted.kind,
                                language=drafted.language, template_key=drafted.template_key, author=who.sub,
                                now=now, searched=_search_columns(terms, drafted))
    try:
        first = uow.contracts.add(contract, _version_fields(contract, rendered, terms, request.variables, who.sub, now))
    except Duplicate:   # the same number drafted at the same moment in another request
        raise _number_taken(drafted.number) from None
    uow.audit.record(org=contract.org, contract_id=contract.id, actor=who.sub, action="contract.drafted",
                     before=None, after=contract.snapshot(), detail={"version": 1})
    uow.collect(contract)
    return contract, first


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


def _ensure_current(if_match: str | None, contract: Contract) -> None:
    """If-Match must name the current version (RFC 9110 strong comparison; `*` names any)."""
    tags = [t.strip() for t in (if_match or "").split(",") if t.strip()]
    if "*" in tags or etag(contract.version) in tags:
        return
    raise PreconditionFailed(f"Contract {contract.id} is at version {contract.version}; the edit was based on "
                             "another one. Read it again and reapply the change.", current_version=contract.version,
                             etag=etag(contract.version))


@dataclass(frozen=True)
class NextVersion:
    """What a contract's next version is drafted from: equal inputs draft and render equal versions."""
    template: ResolvedTemplate
    language: str
    variables: Mapping[str, Any]
    positions: Mapping[str, Any]
    number: int

    def draft(self) -> Draft:
        return draft(self.template, self.language, self.variables, self.positions, version=self.number)


@dataclass(frozen=True)
class RenderedVersion:
    drafted: Draft
    docx_sha256: str


def render_version(version: NextVersion) -> RenderedVersion:
    """The version drafted and its DOCX rendered: the slow part, done ahead of the write transaction."""
    drafted = version.draft()
    return RenderedVersion(drafted, hashlib.sha256(render_docx(drafted.document)).hexdigest())


def revise_contract(uow: ContractsUnitOfWork, catalogue: Catalogue, who: Principal, contract_id: str,
                    if_match: str | None, edit: Edit, now: dt.datetime) -> tuple[Contract, Any]:
    """A new immutable version of a draft: 428 without If-Match, 412 when it is stale, 409 out of draft.

    Drafted and rendered ahead, from the contract as read before the write transaction opens
    (`rendering`); inside it, rendered again only if the contract or its library moved meanwhile."""
    if not if_match:
        raise PreconditionRequired("Send If-Match with the ETag of the version you edited.",
                                   errors=[{"parameter": "If-Match", "in": "header", "detail": "required"}])
    rendered = rendering.ahead(uow, lambda: _revision(uow, catalogue, who.org, if_match, edit,
                                                      uow.contracts.get(who.org, contract_id)), render_version)
    with uow:
        contract = uow.contracts.get(who.org, contract_id, for_update=True)
        revision = _revision(uow, catalogue, who.org, if_match, edit, contract)
        before = contract.snapshot()
        new = _store_version(uow, contract, rendering.reuse(rendered, revision, render_version), revision.variables,
                             who.sub, now, contract.revised, reason=edit.reason)
        uow.audit.record(org=contract.org, contract_id=contract.id, actor=who.sub, action="contract.revised",
                         before=before, after=contract.snapshot(),
                         detail={"version": contract.version, "reason": edit.reason})
        uow.collect(contract)
        uow.commit()
    return contract, new


def _revision(uow: ContractsUnitOfWork, catalogue: Catalogue, org: str, if_match: str, edit: Edit,
              contract: Contract) -> NextVersion:
    """The next version `edit` makes of `contract`, once the edit is allowed (412, 409, 422 otherwise)."""
    _ensure_current(if_match, contract)
    contract.ensure_allowed("edit")
    library = catalogue.of(uow.clause_versions, org)
    current = uow.contracts.version(contract, contract.version)
    variables, positions = edit.applied_to(current.variables, position_inputs(current.positions))
    template = _template(library, contract.template_key, edit.template_version)
    return NextVersion(template, current.language, variables, positions, contract.version + 1)


def store_amendment(uow: ContractsUnitOfWork, contract: Contract, rendered: RenderedVersion,
                    variables: Mapping[str, Any], author: str, now: dt.datetime, *, reason: str,
                    change_request_id: str, delta: dict) -> Any:
    """The version a change request makes (the caller has locked the contract, audits and commits)."""
    def amended(number: str, author: str, now: dt.datetime, searched: dict[str, Any]) -> int:
        terms = _terms(rendered.drafted, contract.id, contract.org, contract.version + 1)
        return contract.amended(number, author, now, searched, terms, delta)
    return _store_version(uow, contract, rendered, variables, author, now, amended, reason=reason,
                          change_request_id=change_request_id)


def _store_version(uow: ContractsUnitOfWork, contract: Contract, rendered: RenderedVersion,
                   variables: Mapping[str, Any], author: str, now: dt.datetime, become, *,
                   reason: str | None = None, change_request_id: str | None = None) -> Any:
    """Store the drafted version as the contract's next one and bring its searched columns along;
    `become` is the aggregate's command that moves it to the new version (and records the event)."""
    drafted = rendered.drafted
    if drafted.number != contract.number:
        _ensure_number_free(uow, contract.org, drafted.number)
    terms = _terms(drafted, contract.id, contract.org, contract.version + 1)
    become(drafted.number, author, now, _search_columns(terms, drafted))
    try:
        uow.contracts.save(contract)
        return uow.contracts.add_version(_version_fields(contract, rendered, terms, variables, author, now, reason,
                                                         change_request_id))
    except Duplicate:   # the new number was taken at the same moment in another request
        raise _number_taken(drafted.number) from None


def _ensure_number_free(uow: ContractsUnitOfWork, org: str, number: str) -> None:
    if uow.contracts.number_taken(org, number):
        raise _number_taken(number)


def _number_taken(number: str) -> Conflict:
    return Conflict(f"Contract number {number} is already used in this organisation.",
                    errors=[field_error("/variables/contract_number", "already used by another contract")])


def _terms(drafted: Draft, contract_id: str, org: str, number: int) -> ContractTerms:
    return ContractTerms.model_validate({**drafted.terms, "contract_id": contract_id, "org": org, "version": number})


def _search_columns(terms: ContractTerms, drafted: Draft) -> dict[str, Any]:
    parties = {p.role: p.name for p in terms.parties}
    vendor_party = next((p.credit_code for p in terms.parties if p.role == "vendor"), None)
    project = str(drafted.variables.get("project_name") or "")
    return dict(client_name=parties.get("client", ""), vendor_name=parties.get("vendor", ""),
                vendor_party=vendor_party,
                search_text="\n".join([terms.title, project, terms.number, *parties.values()]).lower()[:2000],
                counterparty_text="\n".join(parties.values()).lower()[:1000], currency=terms.currency,
                total_amount=terms.total_amount, effective_date=terms.effective_date, end_date=terms.end_date,
                renewal_notice_days=terms.renewal_notice_days, title=terms.title)


def _version_fields(contract: Contract, rendered: RenderedVersion, terms: ContractTerms,
                    variables: Mapping[str, Any], author: str, now: dt.datetime, reason: str | None = None,
                    change_request_id: str | None = None) -> dict[str, Any]:
    """The columns of the contract's current version, as drafted."""
    drafted = rendered.drafted
    return dict(
        id=new_id(), org=contract.org, contract_id=contract.id, version=contract.version,
        template_key=drafted.template_key, template_version=drafted.template_version, language=drafted.language,
        variables=jsonable(variables), values=jsonable(dict(drafted.variables)),
        positions={key: _choice_json(choice) for key, choice in drafted.positions.items()},
        clause_versions=dict(drafted.clause_versions),
        deviations=[{"clause": d.clause_key, "kind": d.kind, "position": d.position,
                     "text": dict(d.text) if d.text else None} for d in drafted.deviations],
        terms=terms.model_dump(mode="json", exclude={"contract_id", "org", "version"}),
        document=DOCUMENT.dump_python(drafted.document, mode="json"),
        docx_sha256=rendered.docx_sha256,
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


