"""Use cases of an organisation's own clause versions: add a draft, rewrite it, publish, deprecate.

Each runs in one unit of work: the change is tried on a private copy of the organisation's
library first (so a version number reused, a published version rewritten or a template left
without a usable version is refused before anything is stored), then the row is written and the
clause's audit stream appended to, and the unit commits.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from services.contracts.domain.clauses import ClauseVersion
from services.contracts.service_layer.catalogue import Catalogue, Library, clause_version
from services.contracts.service_layer.drafting import jsonable
from services.contracts.service_layer.unit_of_work import ContractsUnitOfWork
from shared.auth import Principal
from shared.errors import Conflict, DomainError
from shared.ids import new_id


def _clause_stream(org: str, key: str) -> str:
    return f"clause:{org}:{key}"


def add_clause_version(uow: ContractsUnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                       definition: Mapping[str, Any], now: dt.datetime) -> ClauseVersion:
    """A new version of a clause, in draft; a version number already used is a 409."""
    with uow:
        library = catalogue.fresh(uow.clause_versions, who.org)
        existing = library.clauses.clause(key).versions
        proposed = clause_version(key, number, "draft", definition)
        if proposed.version in existing:
            raise Conflict(f"Clause {key} already has version {proposed.version} "
                           f"({existing[proposed.version].status}); versions are never reused.")
        library.clauses.add_version(proposed)
        uow.clause_versions.add(id=new_id(), org=who.org, key=key, version=str(proposed.version), status="draft",
                                title=dict(library.clauses.clause(key).title), definition=jsonable(definition),
                                builtin=False, created_by=who.sub, created_at=now, updated_at=now)
        _audit_clause(uow, who, key, "clause.version_added", None, str(proposed.version))
        uow.commit()
    return proposed


def replace_clause_draft(uow: ContractsUnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                         definition: Mapping[str, Any], now: dt.datetime) -> ClauseVersion:
    """Rewrite a draft version; a published or deprecated one never changes (409)."""
    with uow:
        library = catalogue.fresh(uow.clause_versions, who.org)
        proposed = clause_version(key, number, "draft", definition)
        current = library.clauses.clause(key).version(proposed.version)
        row = uow.clause_versions.get(who.org, key, str(proposed.version), for_update=True)
        if row is None or row.builtin:
            raise Conflict(f"{current.label} is built in: add a new version instead.")
        library.clauses.add_version(proposed)   # refuses a published one
        before = row.definition
        uow.clause_versions.change(row, definition=jsonable(definition), updated_at=now)
        _audit_clause(uow, who, key, "clause.version_replaced", before, str(proposed.version))
        uow.commit()
    return proposed


def publish_clause_version(uow: ContractsUnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                           now: dt.datetime) -> ClauseVersion:
    return _set_clause_status(uow, catalogue, who, key, number, now, "published")


def deprecate_clause_version(uow: ContractsUnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                             now: dt.datetime) -> ClauseVersion:
    return _set_clause_status(uow, catalogue, who, key, number, now, "deprecated")


def _set_clause_status(uow: ContractsUnitOfWork, catalogue: Catalogue, who: Principal, key: str, number: str,
                       now: dt.datetime, status: str) -> ClauseVersion:
    with uow:
        library = catalogue.fresh(uow.clause_versions, who.org)
        if status == "published":   # a body over the rendering budget never reaches a contract
            library.clauses.clause(key).version(number).check_budget()
        change = library.clauses.publish if status == "published" else library.clauses.deprecate
        changed = change(key, number)   # 409 from the domain: a published version is not published again
        _ensure_templates_resolve(library, f"{changed.label} {status}")
        row = uow.clause_versions.get(who.org, key, str(changed.version), for_update=True)
        if row is None:   # a built-in version: the organisation's status of it is a row of its own
            uow.clause_versions.add(id=new_id(), org=who.org, key=key, version=str(changed.version), status=status,
                                    title=dict(library.clauses.clause(key).title), definition={}, builtin=True,
                                    created_by=who.sub, created_at=now, updated_at=now)
        else:
            uow.clause_versions.change(row, status=status, updated_at=now)
        _audit_clause(uow, who, key, f"clause.{status}", None, str(changed.version))
        uow.commit()
    return changed


def _ensure_templates_resolve(library: Library, change: str) -> None:
    """Refuse a change that leaves a template with no usable version of a clause (or clashing variables)."""
    for key in library.template_keys:
        try:
            library.template(key)
        except DomainError as error:
            raise Conflict(f"With {change}, template {key} could not be drafted from: {error.detail}") from None


def _audit_clause(uow: ContractsUnitOfWork, who: Principal, key: str, action: str, before: Any, number: str) -> None:
    after = uow.clause_versions.snapshot(who.org, key, number)
    uow.audit.append(stream=_clause_stream(who.org, key), org=who.org, actor=who.sub, action=action, before=before,
                     after=jsonable(after), detail={"version": number})
